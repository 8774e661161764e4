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


#: valgrind's m_errormgr.c: under --error-limit=yes (its default) it records no error once it
#: has shown 1,000 different errors (M_COLLECT_NO_ERRORS_AFTER_SHOWN) or found 10,000,000
#: (M_COLLECT_NO_ERRORS_AFTER_FOUND): its log then says "I'm not reporting any more"
ERROR_LIMIT_SHOWN = 1000
ERROR_LIMIT_FOUND = 10_000_000


def error_limit_active(valgrind_options: list[str]) -> bool:
    """valgrind's --error-limit (yes by default; the last one given wins)."""
    limit = "yes"
    for o in valgrind_options:
        if o.startswith("--error-limit="):
            limit = o.split("=", 1)[1]
    return limit != "no"


def error_limit_note(counts: ErrorCounts | None, valgrind_options: list[str]) -> str | None:
    """A sentence when valgrind has stopped recording errors at its limit: every count it gives
    from then on is too low and later errors are nowhere (a server under valgrind for hours
    reaches it).  None when it has not, or runs with --error-limit=no (the last one given wins)."""
    if counts is None or not error_limit_active(valgrind_options):
        return None
    if counts.shown >= ERROR_LIMIT_SHOWN:
        # valgrind counts every loss record a leak search prints as an error shown (3,000
        # records: n_errs_found 0, n_errs_shown 3,000, and the next real error went unrecorded)
        why = (f"it has shown {counts.shown:,} errors and loss records (its limit: "
               f"{ERROR_LIMIT_SHOWN:,}; every loss record a leak search prints counts, so leak "
               "searches alone reach it)")
    elif counts.found >= ERROR_LIMIT_FOUND:
        why = f"it has found {counts.found:,} errors (its limit: {ERROR_LIMIT_FOUND:,})"
    else:
        return None
    return (f"valgrind has stopped recording errors: {why}, and under --error-limit=yes (its "
            "default) it records no more -- the counts stay where they are and later errors, new "
            "kinds included, are reported nowhere (its log says \"I'm not reporting any more\"); "
            "restart it with --error-limit=no to see them all, e.g. 'vg-start PROGRAM -- "
            "--error-limit=no' (vg-start passes it unless told otherwise)")
