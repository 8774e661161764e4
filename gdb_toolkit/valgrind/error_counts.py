"""memcheck's error counts (``v.info n_errs_found``), apart from the error parsers of
error_reports: vg-start only counts errors (importing error_reports for it was ~1.1 ms of its
first call); error_reports re-exports both names."""
import re

from gdb_toolkit.common.record import record

_NERRS_RE = re.compile(r"n_errs_found (\d+) n_errs_shown (\d+) \(vgdb-error (\d+)\)")


@record
class ErrorCounts:
    found: int
    shown: int
    vgdb_error: int


def parse_n_errs_found(text: str) -> ErrorCounts | None:
    m = _NERRS_RE.search(text)
    return ErrorCounts(*(int(g) for g in m.groups())) if m else None
