"""The layout of one event record (``struct gtk_kt_event`` of bpf_source.py), shared by the
code generator and the worker's decoder.  No imports: the worker loads it at start-up::

    u64 time_ns; u64 task; u64 retval; u64 vals[N]; u32 pid; u32 tid; s32 stack_id;
    u32 flags; char comm[16];
"""


class Layout:
    """Byte offsets in the record for *nvalues* values."""

    __slots__ = ("nvalues", "time", "task", "retval", "vals", "pid", "tid", "stack_id", "flags",
                 "comm", "size")

    def __init__(self, nvalues: int):
        self.nvalues = nvalues
        self.time, self.task, self.retval, self.vals = 0, 8, 16, 24
        self.pid = self.vals + 8 * nvalues
        self.tid, self.stack_id, self.flags, self.comm = self.pid + 4, self.pid + 8, self.pid + 12, self.pid + 16
        self.size = self.comm + 16
