"""memcheck errors: ``v.info all_errors``, ``v.info last_error``, ``v.info n_errs_found``.

The stack and location parsers (~3 ms of regular expressions to compile) are imported where
an error is parsed or described; counting errors (vg-start's first call) is error_counts'."""
from __future__ import annotations

import re

from gdb_toolkit.common.record import field, json_keys, record
from gdb_toolkit.valgrind.error_counts import (ErrorCounts, error_limit_active,  # noqa: F401  (re-exported)
                                                error_limit_note, parse_n_errs_found)


@record
class MemcheckError:
    what: str                             # "Invalid write of size 1"
    stack: list[Frame] = field(default_factory=list)
    location: Location | None = None      # "Address 0x.. is 0 bytes after a block of size 32 alloc'd"
    details: list[str] = field(default_factory=list)
    count: int | None = None              # from "N errors in context K of M"
    origin: Stack | None = None           # --track-origins: where the uninitialised value came from
    related: list[Stack] = field(default_factory=list)   # other tools' further stacks (helgrind's
    #                                       "This conflicts with a previous write ...")

    @property
    def at(self) -> Frame | None:
        from gdb_toolkit.valgrind.stacks import program_frame

        return program_frame(self.stack)

    def one_line(self) -> str:
        at = self.at
        text = self.what + (f" at {at.label()}" if at else "")
        if self.location is not None:
            text += f"; {self.location.description}"
            from gdb_toolkit.valgrind.stacks import program_frame

            freed = program_frame(self.location.free_stack)
            alloc = self.location.allocated_at
            if freed is not None:
                text += f" (freed at {freed.label()})"
            if alloc is not None:
                text += f" (allocated at {alloc.label()})"
        if self.origin is not None:
            site = self.origin.site
            text += f"; {self.origin.what}" + (f" at {site.label()}" if site else "")
        return text


# JSON key (contract v3, docs/json.md): the extra lines are `detail_lines` (as `usage_lines`);
# stack-diagnose's `details` is an object
json_keys(MemcheckError, {"details": "detail_lines"})



def _printed(line: str) -> str:
    """A line of valgrind's text as printed: its names escaped once (escape_name; the rest of
    valgrind's prose is printable and holds no backslash, so the line reads unchanged)."""
    from gdb_toolkit.common.names import escape_name

    return escape_name(line)


@record
class ErrorSummary:
    """valgrind's ERROR SUMMARY line (counts: `errors` is the list of errors elsewhere)."""
    error_count: int
    context_count: int
    suppressed_count: int
    suppressed_context_count: int


@record
class ErrorList:
    errors: list[MemcheckError]
    summary: ErrorSummary | None


_ERROR_PATTERNS = None


def _error_patterns() -> tuple:
    """parse_errors' expressions, compiled on its first call (~1 ms that vg-start, which only
    counts errors, does not pay): summary, context count, separator, origin, related stack."""
    global _ERROR_PATTERNS
    if _ERROR_PATTERNS is None:
        _ERROR_PATTERNS = (
            re.compile(r"ERROR SUMMARY: (\d[\d,]*) errors from (\d[\d,]*) contexts "
                       r"\(suppressed: (\d[\d,]*) from (\d[\d,]*)\)"),
            re.compile(r"^(\d[\d,]*) errors in context (\d+) of (\d+):"),
            re.compile(r"^-{3}([A-Za-z-]*-)?-{8,}$"),
            re.compile(r"^Uninitialised value was created"),
            # a heading that starts another stack of the same error (helgrind, drd)
            re.compile(r"^(This conflicts with|Other segment (start|end)|Allocation context|"
                       r"Lock at .* was first observed|Required order was established|"
                       r"followed by a later acquisition)"))
    return _ERROR_PATTERNS


def parse_errors(text: str, code_map: CodeMap | None = None) -> ErrorList:
    """Error blocks (as in ``last_error`` / ``all_errors``) and the ERROR SUMMARY.

    The error's own stack, the address description (with where a block was freed
    and allocated) and the --track-origins origin stack are kept apart."""
    from gdb_toolkit.valgrind.locations import parse_location_lines
    from gdb_toolkit.valgrind.stacks import Stack, parse_frame, strip_prefix

    summary_re, context_re, separator_re, origin_re, related_re = _error_patterns()
    lines = text.splitlines()
    errors: list[MemcheckError] = []
    summary = None
    current: MemcheckError | None = None
    count = None
    dashed = False
    i = 0
    while i < len(lines):
        t = strip_prefix(lines[i]).strip()
        if not t:
            if not dashed:                # memcheck: a blank line ends an error; helgrind/drd:
                current = None            # blank lines inside, a line of dashes between errors
            i += 1
            continue
        if (m := summary_re.search(t)):
            a, b, c, d = (int(g.replace(",", "")) for g in m.groups())
            summary = ErrorSummary(a, b, c, d)
            current = None
            i += 1
            continue
        if (m := context_re.match(t)):
            count = int(m.group(1).replace(",", ""))
            current = None
            i += 1
            continue
        if separator_re.match(t):        # helgrind/drd put a line of dashes before each error
            current, dashed = None, True
            i += 1
            if "Announcement" in t:       # "---Thread-Announcement---": not an error; skip its block
                while i < len(lines) and not strip_prefix(lines[i]).strip():
                    i += 1
                while i < len(lines) and strip_prefix(lines[i]).strip():
                    i += 1
            continue
        if t.startswith(("at 0x", "by 0x")) and current is not None:
            f = parse_frame(t, code_map)
            if f:
                target = (current.related[-1].frames if current.related
                          else current.origin.frames if current.origin is not None else current.stack)
                target.append(f)
            i += 1
            continue
        if current is not None and origin_re.match(t):
            current.origin = Stack(t)
            i += 1
            continue
        if t.startswith("Address ") and current is not None:
            loc, j = parse_location_lines(lines, i, code_map)
            if loc is not None:
                current.location = loc
                i = j
                continue
        if t.startswith("No errors yet"):
            i += 1
            continue
        if current is None:
            current = MemcheckError(t, count=count)
            count = None
            errors.append(current)
        elif current.stack and related_re.match(t):
            current.related.append(Stack(t))
        else:
            current.details.append(_printed(t))          # valgrind's text: names any bytes
        i += 1
    return ErrorList(errors, summary)


@record
class ErrorsReport:
    pid: int
    counts: ErrorCounts | None
    error_summary: ErrorSummary | None
    errors: list[MemcheckError]          # listed by all_errors (valgrind lists them only with -v/-s)
    last_error: MemcheckError | None
    last_error_stop: str | None          # the error that last stopped the program (seen by gdb)
    waiting_children: list = field(default_factory=list)   # waiting.WaitingProcess: stuck workers
    notes: list = field(default_factory=list)    # human sentences (docs/json.md: every result has them)
    text_top: int | None = field(default=None, metadata={"json_skip": True})
    #                                      the text lists this many contexts, most frequent first
