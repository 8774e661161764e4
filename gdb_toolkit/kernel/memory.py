"""Kernel memory sources: one interface for every place kernel memory is read from.

- ``live``   -- /proc/kcore of the running kernel (kcore.Kcore): virtual addresses, always
  current; the kernel's text files (kprobes/list, tracefs) describe the same kernel.
- ``vmcore`` -- a dump of a kernel (vmcore.Vmcore for ELF: kdump's /proc/vmcore,
  makedumpfile -E, QEMU's dump-guest-memory; vmcore.DiskDump for the kdump-compressed
  format): physical memory, translated through the dumped page tables; frozen in time;
  no tracefs or debugfs: everything comes from memory.
- ``gdb``    -- the memory of gdb's current target (a halted kernel behind QEMU's gdbstub,
  kgdb or a JTAG probe): read through gdb, consistent while the target is stopped
  (CallbackMemory, given gdb's reader by the gdb layer).

Each has ``read(addr, n)`` for kernel virtual addresses, ``arch``, ``vmcoreinfo`` (possibly
empty), ``kind``, ``description`` and ``regions()`` (what it holds, for ``kcore``).
"""
import _struct as struct   # what struct.py re-exports (see plt/slots.py)
from contextlib import contextmanager

from gdb_toolkit.common.closeable import Closeable
from gdb_toolkit.common.record import record

from gdb_toolkit.common.errors import ToolkitError

LIVE, VMCORE, GDB = "live", "vmcore", "gdb"

PAGE_SIZE = 4096
MAX_SNAPSHOT_PAGES = 4096       # 16 MiB at most held by one snapshot, then it starts over
MAX_SNAPSHOT_READ = 2 * PAGE_SIZE   # larger reads go straight to the source


def vmcoreinfo_hex(info: dict, key: str) -> int | None:
    """A VMCOREINFO value the kernel writes in hex without 0x (``SYMBOL(name)=ffffffff8...``,
    ``KERNELOFFSET=3a000000``) as an int; None when absent, empty or not hex.  The one reader
    of those values: kaslr_offset, kallsyms_mem's table addresses, pagetables' roots."""
    v = info.get(key)
    try:
        return int(v, 16) if v else None
    except ValueError:
        return None


@record
class Region:
    """A span the source holds: a PT_LOAD of a kcore (virtual) or of a dump (physical)."""
    start: int
    size: int
    offset: int | None         # file offset, when it is a file
    physical: bool = False

    @property
    def end(self) -> int:
        return self.start + self.size


class KernelMemory(Closeable):
    """Base of the memory sources: typed reads on top of ``read``."""

    kind = LIVE
    path: str | None = None
    _snap: dict[int, bytes] | None = None     # page -> bytes while a snapshot() is open

    @property
    def description(self) -> str:
        return self.path or self.kind

    @property
    def vmcoreinfo(self) -> dict[str, str]:
        return {}

    @property
    def kaslr_offset(self) -> int | None:
        return vmcoreinfo_hex(self.vmcoreinfo, "KERNELOFFSET")

    @property
    def release(self) -> str | None:
        return self.vmcoreinfo.get("OSRELEASE")

    def read(self, addr: int, size: int) -> bytes:
        raise NotImplementedError

    def read_u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.read(addr, 8))[0]

    def read_u32(self, addr: int) -> int:
        return struct.unpack("<I", self.read(addr, 4))[0]

    def read_cstring(self, addr: int, limit: int = 256) -> str:
        """A NUL-terminated string (at most *limit* bytes), read up to the end of its page
        at a time, never crossing into the next page (which may be unmapped) unless the
        string goes on there."""
        data = b""
        while len(data) < limit:
            step = min(limit - len(data), PAGE_SIZE - ((addr + len(data)) & (PAGE_SIZE - 1)))
            part = self.read(addr + len(data), step)
            i = part.find(b"\0")
            if i >= 0:
                return (data + part[:i]).decode("utf-8", "replace")
            data += part
        return data.decode("utf-8", "replace")

    def contains(self, addr: int, size: int = 1) -> bool:
        try:
            self.read(addr, size)
            return True
        except ToolkitError:
            return False

    # -- one command's reads as one snapshot -------------------------------------
    @contextmanager
    def snapshot(self):
        """Within this block, small reads are served from whole pages, each read from the
        source once (one pread of /proc/kcore instead of one per struct or string).

        Only for a span of reads that may see the kernel as of one moment -- one command's
        report -- and only in sources that support it (``_read_direct``); writes never go
        through it.  Nested use keeps the outer snapshot."""
        if self._snap is not None:
            yield self
            return
        self._snap = {}
        try:
            yield self
        finally:
            self._snap = None

    def _read_direct(self, addr: int, size: int) -> bytes:
        raise NotImplementedError

    def _snapshot_read(self, addr: int, size: int) -> bytes:
        """[addr, addr+size) from the snapshot's pages, reading missing pages whole; a page
        that cannot be read whole (a hole or segment end in it) is not cached: the bytes
        asked for are read directly, with the error a direct read gives."""
        pages = self._snap
        out = []
        cur, end = addr, addr + size
        while cur < end:
            page = cur & ~(PAGE_SIZE - 1)
            blk = pages.get(page)
            if blk is None:
                try:
                    blk = self._read_direct(page, PAGE_SIZE)
                except ToolkitError:
                    return self._read_direct(addr, size)
                if len(blk) != PAGE_SIZE:
                    return self._read_direct(addr, size)
                if len(pages) >= MAX_SNAPSHOT_PAGES:
                    pages.clear()
                pages[page] = blk
            n = min(end, page + PAGE_SIZE) - cur
            out.append(blk[cur - page:cur - page + n])
            cur += n
        return out[0] if len(out) == 1 else b"".join(out)

    def regions(self) -> list[Region]:
        return []

    def close(self) -> None:
        pass


class CallbackMemory(KernelMemory):
    """Memory read through a callback: gdb's target (the gdb layer passes its reader).

    *read(addr, n)* raises ToolkitError when the target cannot read there.  Reads are cached
    per page while the object lives (the target is stopped: memory does not change under us;
    the gdb layer makes a new one per command)."""

    kind = GDB

    def __init__(self, read, arch: str, description: str, vmcoreinfo: dict | None = None,
                 page_cache: bool = True):
        self._read = read
        self.arch = arch
        self._desc = description
        self._info = dict(vmcoreinfo or {})
        self._pages: dict[int, bytes] | None = {} if page_cache else None
        self.path = None

    @property
    def description(self) -> str:
        return self._desc

    @property
    def vmcoreinfo(self) -> dict[str, str]:
        return self._info

    def set_vmcoreinfo(self, info: dict) -> None:
        self._info = dict(info)

    def read(self, addr: int, size: int) -> bytes:
        if size <= 0:
            return b""
        addr &= (1 << 64) - 1
        if self._pages is None or size > 1 << 16:
            return self._read(addr, size)
        out = []
        cur, end = addr, addr + size
        while cur < end:
            page = cur & ~0xFFF
            blk = self._pages.get(page)
            if blk is None:
                try:
                    blk = self._read(page, 4096)
                except ToolkitError:
                    # the page may be partly readable: read just what was asked
                    return b"".join(out) + self._read(cur, end - cur)
                if len(self._pages) > 4096:
                    self._pages.clear()
                self._pages[page] = blk
            n = min(end, page + 4096) - cur
            out.append(blk[cur - page:cur - page + n])
            cur += n
        return b"".join(out)
