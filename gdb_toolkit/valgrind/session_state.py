"""What the toolkit remembers about one valgrind process (no gdb here).

A session is keyed by the process actually connected: its pid *and* its start
time (a pid can be reused), so state of a process gdb left never leaks into
answers about another.  Every complete leak search is kept as a snapshot
(time, per allocation site bytes/blocks by kind) for ``vg-leaks --history``.
"""
import time

from gdb_toolkit.common.record import field, record


@record(frozen=True)
class SiteKey:
    """An allocation site: the frame a loss record is attributed to, and the leak kind."""
    kind: str
    symbol: str | None
    file: str | None
    line: int | None
    object: str | None

    def label(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else (self.object or "?")
        return f"{self.symbol or '???'} ({where})"


@record
class SiteSample:
    bytes: int
    blocks: int
    records: int = 1


@record
class LeakSnapshot:
    """One complete leak search: when, and what each allocation site held."""
    seq: int                          # 1, 2, ... within the session
    time: float                       # time.time() when the search ran
    sites: dict[SiteKey, SiteSample]
    totals: dict[str, int]            # bytes per kind (valgrind's LEAK SUMMARY way)
    source: str = "vg-leaks"          # vg-leaks | vg-watch


@record
class Session:
    pid: int
    start_time: int | None = None     # /proc/PID/stat field 22: tells a reused pid apart
    program: str | None = None
    # vg-start'ed: ours to kill (launch.start_valgrind: a launch.Spawned, or a subprocess.Popen
    # without setpriv --pdeathsig).  The annotation is a string: importing subprocess (with
    # locale, signal, threading, selectors: ~4-5 ms) for it made every vg-* report's first call pay it
    popen: "Spawned | subprocess.Popen | None" = field(default=None, repr=False)
    private_dir: str | None = None    # our mkdtemp dir: vgdb's stderr, the default valgrind log
    log_file: str | None = None
    log_pattern: str | None = None    # valgrind's --log-file with %p: each child's own log
    waiting_said: set = field(default_factory=set)   # (pid, stopped_at) of waiting children announced
    vgdb_log: str | None = None
    vgdb_prefix: str | None = None
    connected: bool = False
    connection_num: int | None = None   # gdb's number of the connection vg-start/vg-attach made
    gone: bool = False
    exit_code: int | None = None
    errors_seen: int = 0
    last_error_stop: str | None = None
    leak_totals: dict[str, int] | None = None   # bytes per kind at the previous vg-leaks
    records_total: int | None = None            # loss records at the last full search
    last_records: list = field(default_factory=list, repr=False)   # LossRecords of that search
    hidden_search: bool = False                 # a search ran that vg-leaks did not show
    snapshots: list[LeakSnapshot] = field(default_factory=list)
    pending_notes: list[str] = field(default_factory=list)

    def add_snapshot(self, sites: dict[SiteKey, SiteSample], totals: dict[str, int],
                     source: str = "vg-leaks", when: float | None = None) -> LeakSnapshot:
        snap = LeakSnapshot(len(self.snapshots) + 1, time.time() if when is None else when,
                            sites, totals, source)
        self.snapshots.append(snap)
        return snap


def sites_of(records, frame_of=None) -> dict[SiteKey, SiteSample]:
    """Loss records -> bytes/blocks per allocation site and kind.

    *frame_of(record)* gives the frame a record is attributed to (default: its
    program frame)."""
    # records attributed to the same frame object (stacks.parse_frame shares one Frame per
    # distinct line) are summed first: 10 000 records, a few hundred sites, few SiteKeys hashed
    by_frame: dict[tuple, list] = {}
    for r in records:
        f = frame_of(r) if frame_of else r.program_frame
        acc = by_frame.get((r.kind, id(f)))
        if acc is None:
            by_frame[(r.kind, id(f))] = [r.kind, f, r.bytes, r.blocks, 1]   # keeps f alive: ids stay unique
        else:
            acc[2] += r.bytes
            acc[3] += r.blocks
            acc[4] += 1
    out: dict[SiteKey, SiteSample] = {}
    for kind, f, nbytes, blocks, count in by_frame.values():
        key = SiteKey(kind, f.symbol if f else None, f.file if f else None,
                      f.line if f else None, None if f is None or f.file else f.object)
        s = out.get(key)
        if s is None:
            out[key] = SiteSample(nbytes, blocks, count)
        else:
            s.bytes += nbytes
            s.blocks += blocks
            s.records += count
    return out
