"""One way for objects that hold a file descriptor (or another resource) to give it back."""


class Closeable:
    """``with obj:`` closes it, and so does garbage collection when an owner forgot: a
    subclass defines an idempotent ``close()``.  (Before, each holder -- safe files, the cache
    directory, kernel memory sources, vmlinux, the kernel session -- repeated these lines.)"""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:       # interpreter shutdown, a half-built object: nothing to report
            pass
