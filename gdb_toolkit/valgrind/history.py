"""Leak growth over time: per-site series across a session's leak snapshots (no gdb).

``build_history`` turns the snapshots into one row per allocation site with
its series, growth per snapshot and per second, sorted by growth; rows carry a
text sparkline for the terminal; ``write_export`` writes CSV or JSON lines and
``write_plot`` an SVG/PNG of the top growing sites (matplotlib, imported only
when a plot is asked for).
"""
import json
import os

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.record import field, json_keys, record
from gdb_toolkit.valgrind.session_state import LeakSnapshot, SiteKey

SPARKS = "▁▂▃▄▅▆▇█"


@record
class SitePoint:
    seq: int
    time: float
    bytes: int
    blocks: int


@record
class SiteHistory:
    kind: str
    symbol: str | None
    file: str | None
    line: int | None
    object: str | None
    label: str
    series: list[SitePoint]
    first_bytes: int
    last_bytes: int
    growth_bytes: int                  # last - first
    growth_per_snapshot: float         # bytes per snapshot (last - first) / (n - 1)
    growth_per_second: float | None    # bytes per second over the whole series
    steady: bool                       # every step grew by the same amount
    sparkline: str = field(default="", metadata={"json_skip": True})


@record
class HistoryReport:
    pid: int
    snapshots: int
    first_time: float | None
    last_time: float | None
    times: list[float]
    sites: list[SiteHistory]
    total_series: list[dict]           # per snapshot: {seq, time, definite_bytes, indirect_bytes, ...}
    notes: list[str] = field(default_factory=list)
    export: str | None = None          # file written by --export
    plot: str | None = None            # file written by --plot


# JSON key (contract v5, docs/json.md): counts end in `_count`; v6: an amount says its unit
# (`time` is time.time() of a snapshot: Unix seconds; growth is in bytes)
json_keys(HistoryReport, {"snapshots": "snapshot_count", "first_time": "first_time_seconds",
                          "last_time": "last_time_seconds", "times": "time_seconds_list"})
json_keys(SiteHistory, {"growth_per_snapshot": "growth_bytes_per_snapshot",
                        "growth_per_second": "growth_bytes_per_second"})
json_keys(SitePoint, {"time": "time_seconds"})


def sparkline(values: list[int]) -> str:
    """One block character per value, scaled between the series' min and max."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if hi == lo:
        return SPARKS[0] * len(values) if hi == 0 else SPARKS[3] * len(values)
    top = len(SPARKS) - 1
    return "".join(SPARKS[round((v - lo) * top / (hi - lo))] for v in values)


def build_history(pid: int, snapshots: list[LeakSnapshot], kinds: list[str] | None = None,
                  top: int | None = None) -> HistoryReport:
    """Per-site series across *snapshots* (a site absent from a snapshot held 0 bytes)."""
    keys: dict[SiteKey, None] = {}
    for snap in snapshots:
        for k in snap.sites:
            keys.setdefault(k, None)
    rows = []
    for k in keys:
        if kinds and k.kind not in kinds:
            continue
        pts = []
        for snap in snapshots:
            s = snap.sites.get(k)
            pts.append(SitePoint(snap.seq, snap.time, s.bytes if s else 0, s.blocks if s else 0))
        n = len(pts)
        growth = pts[-1].bytes - pts[0].bytes
        per_snap = growth / (n - 1) if n > 1 else 0.0
        dt = pts[-1].time - pts[0].time
        steps = {b.bytes - a.bytes for a, b in zip(pts, pts[1:])}
        rows.append(SiteHistory(k.kind, k.symbol, k.file, k.line, k.object, k.label(), pts,
                                pts[0].bytes, pts[-1].bytes, growth, per_snap,
                                growth / dt if n > 1 and dt > 0 else None,
                                len(steps) == 1 and n > 1,
                                sparkline([p.bytes for p in pts])))
    rows.sort(key=lambda r: (-r.growth_per_snapshot, -r.last_bytes, r.label, r.kind))
    if top is not None:
        rows = rows[:top]
    notes = []
    if len(snapshots) < 2:
        notes.append(f"{len(snapshots)} leak snapshot(s) in this session: growth needs at least two "
                     "complete searches ('vg-leaks' at two stops, or 'vg-watch N')")
    totals = [{"seq": s.seq, "time_seconds": s.time, **{f"{k}_bytes": v for k, v in s.totals.items()}}
              for s in snapshots]
    return HistoryReport(pid, len(snapshots), snapshots[0].time if snapshots else None,
                         snapshots[-1].time if snapshots else None, [s.time for s in snapshots],
                         rows, totals, notes)


def open_output(path: str, binary: bool = False):
    """Open *path* for writing a report: a regular file (created or truncated), never a FIFO,
    device or kernel file, never through a link or into another user's file in /tmp
    (``safe_open.open_output``)."""
    from gdb_toolkit.common.safe_open import open_output as open_fd

    fd = open_fd(path, "output file")
    return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")


class _WriteErrors:
    """Inside: an OSError while writing *path* (a full disk, EIO) is a cause and a fix."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, OSError):
            raise ToolkitError(f"cannot write {self.path}: {exc.strerror or exc}",
                               "give another path (with room on its disk)") from None
        return False


def write_export(report: HistoryReport, path: str) -> str:
    """Write the series: ``.csv`` (one row per site and snapshot) or JSON lines (``.jsonl``,
    one object per site and snapshot).  Returns the format written."""
    fmt = "csv" if path.lower().endswith(".csv") else "jsonl"
    with _WriteErrors(path), open_output(path) as fh:
        if fmt == "csv":
            import csv

            w = csv.writer(fh)
            w.writerow(["pid", "seq", "time", "kind", "site", "symbol", "file", "line", "bytes", "blocks"])
            for r in report.sites:
                for p in r.series:
                    w.writerow([report.pid, p.seq, f"{p.time:.3f}", r.kind, r.label, r.symbol or "",
                                r.file or "", r.line or "", p.bytes, p.blocks])
        else:
            for r in report.sites:
                for p in r.series:
                    fh.write(json.dumps({"pid": report.pid, "seq": p.seq, "time": round(p.time, 3),
                                         "kind": r.kind, "site": r.label, "symbol": r.symbol,
                                         "file": r.file, "line": r.line, "bytes": p.bytes,
                                         "blocks": p.blocks}) + "\n")
    return fmt


def write_plot(report: HistoryReport, path: str, top: int = 8) -> None:
    """Plot bytes over time of the *top* growing sites (SVG or PNG by the file's suffix)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".svg", ".png"):
        raise ToolkitError(f"--plot {path}: unknown image type", "name the file .svg or .png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        matplotlib.rcParams["svg.fonttype"] = "none"     # labels stay text in the SVG
        from matplotlib.figure import Figure
    except ImportError:
        raise ToolkitError("--plot needs matplotlib", "apt-get install python3-matplotlib") from None
    rows = [r for r in report.sites if r.growth_bytes > 0][:top] or report.sites[:top]
    fig = Figure(figsize=(9, 5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    t0 = report.first_time or 0.0
    for r in rows:
        ax.plot([p.time - t0 for p in r.series], [p.bytes for p in r.series], marker="o",
                label=f"{r.label} [{r.kind}] {r.growth_per_snapshot:+,.0f} B/snapshot")
    peaks = [max(p.bytes for p in r.series) for r in rows if r.series]
    if peaks and min(peaks) > 0 and max(peaks) / min(peaks) > 100:
        ax.set_yscale("log")     # a 1 KB leak stays visible beside a 1 MB one
    ax.set_xlabel("seconds since the first snapshot")
    ax.set_ylabel("bytes held by the allocation site")
    ax.set_title(f"valgrind pid {report.pid}: top growing allocation sites "
                 f"({report.snapshots} leak snapshots)")
    ax.grid(True, alpha=0.3)
    if rows:
        ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    with _WriteErrors(path), open_output(path, binary=True) as fh:
        fig.savefig(fh, format=ext[1:])
