"""A kernel signal frame (stack.sigframe.decode) from target memory: the input is the memory
at gdb's sigtramp sp, decoded as x86_64 and as aarch64.  Invariants: a decoded frame's signal
is 1..64 or unknown (None), the alternate stack is reported only when it was configured."""
from gdb_toolkit.stack.sigframe import READ_SIZE, decode

MAX_LEN = 1024


def fuzz(data: bytes) -> None:
    for arch in ("x86_64", "aarch64"):
        f = decode(arch, 1, 0x7000, data[:READ_SIZE[arch]])
        if f is None:
            continue
        assert f.signo is None or 0 < f.signo < 65
        assert (f.altstack_sp is None) == (f.altstack_size is None)
        assert isinstance(f.on_altstack, bool)
