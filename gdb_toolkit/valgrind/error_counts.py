"""memcheck's error counts (``v.info n_errs_found``), apart from the error parsers of
error_reports: vg-start only counts errors (importing error_reports for it was ~1.1 ms of its
first call); error_reports re-exports both names."""
import re

from gdb_toolkit.common.record import json_keys, record

_NERRS_RE = re.compile(r"n_errs_found (\d+) n_errs_shown (\d+) \(vgdb-error (\d+)\)")


@record
class ErrorCounts:
    found: int          # errors memcheck found so far (n_errs_found): JSON `found_count`
    shown: int          # ... and reported (n_errs_shown): JSON `shown_count`
    vgdb_error: int     # --vgdb-error=N: valgrind stops at the Nth error on (a threshold, not a count)


# JSON keys (contract v4, docs/json.md): counts end in `_count`
json_keys(ErrorCounts, {"found": "found_count", "shown": "shown_count"})


def parse_n_errs_found(text: str) -> ErrorCounts | None:
    m = _NERRS_RE.search(text)
    return ErrorCounts(*(int(g) for g in m.groups())) if m else None
