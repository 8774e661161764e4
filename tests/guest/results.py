"""Pure mapping from the guest's pytest reports to one outcome per test (no pytest imports).

The in-guest reporter (report_plugin.py) writes one JSON line per setup/call/teardown report,
keyed by ``result_key`` = "<absolute file path>::<rest of the node id>" so the host and the guest
agree even when their rootdirs differ.
"""
import json
import re
from dataclasses import dataclass

MAX_TEXT = 12000

# The first line of a kernel's own report of trouble: what a failure must show even when the
# console's last lines are the same report repeated (a soft lockup prints every ~30 s).
KERNEL_TROUBLE = re.compile(r"(BUG: |Kernel panic|Oops|general protection fault|WARNING: CPU|"
                            r"rcu: INFO|INFO: task .* blocked for more than)")


def result_key(path: str, nodeid: str) -> str:
    """``/abs/tests/x/test_a.py::TestC::test_b[1]`` from a path and a pytest node id."""
    rest = nodeid.split("::", 1)[1] if "::" in nodeid else nodeid
    return f"{path}::{rest}"


@dataclass
class Outcome:
    outcome: str   # passed | failed | skipped | xfailed | missing
    text: str = ""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else "...\n" + text[-MAX_TEXT:]


def skip_reason(longrepr) -> str:
    """A skip report's reason: pytest gives (path, lineno, "Skipped: reason")."""
    if isinstance(longrepr, (list, tuple)) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr or "")
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason


def parse_lines(text: str) -> list[dict]:
    """JSON lines; a torn last line (guest killed mid-write) is ignored."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def outcomes(rows: list[dict]) -> dict[str, Outcome]:
    """One Outcome per test key from its setup/call/teardown reports."""
    by_key: dict[str, dict[str, dict]] = {}
    for r in rows:
        if "key" in r and "when" in r:
            by_key.setdefault(r["key"], {})[r["when"]] = r
    result = {}
    for key, phases in by_key.items():
        failed = [(w, phases[w]) for w in ("setup", "call", "teardown")
                  if phases.get(w, {}).get("outcome") == "failed"]
        if failed:
            parts = []
            for when, r in failed:
                head = {"setup": "error in setup", "call": "failed",
                        "teardown": "error in teardown"}[when]
                body = r.get("longrepr") or ""
                for name in ("stdout", "stderr"):
                    if r.get(name):
                        body += f"\n----- captured {name} (guest) -----\n{r[name]}"
                parts.append(f"[guest: {head}]\n{body}")
            result[key] = Outcome("failed", _clip("\n".join(parts)))
            continue
        skipped = next((phases[w] for w in ("setup", "call")
                        if phases.get(w, {}).get("outcome") == "skipped"), None)
        if skipped is not None:
            if skipped.get("wasxfail") is not None:
                result[key] = Outcome("xfailed", skipped.get("wasxfail") or "xfail")
            else:
                result[key] = Outcome("skipped", skip_reason(skipped.get("longrepr")))
            continue
        if phases.get("call", {}).get("outcome") == "passed":
            result[key] = Outcome("passed")
        else:
            result[key] = Outcome("missing", "the guest reported no call phase for this test")
    return result


def collect_errors(rows: list[dict]) -> list[str]:
    return [f"{r['nodeid']}:\n{r.get('longrepr', '')}" for r in rows if r.get("collect_error")]


def kernel_trouble(console: str) -> str | None:
    """The console's first line where the guest kernel reports trouble (panic, lockup, oops)."""
    return next((line for line in console.replace("\r", "").splitlines()
                 if KERNEL_TROUBLE.search(line)), None)


def console_excerpt(console: str, tail: int = 40, trouble: int = 80) -> str:
    """The console lines a failure shows: the kernel's first report of trouble (a panic's or
    soft lockup's backtrace, up to *trouble* lines from it) when there is one, then the last
    *tail* lines; the two are not repeated where they overlap."""
    lines = console.replace("\r", "").splitlines()
    last = max(0, len(lines) - tail)
    first = next((i for i, line in enumerate(lines) if KERNEL_TROUBLE.search(line)), None)
    if first is None or first >= last:
        return "----- guest console (tail) -----\n" + "\n".join(lines[last:])
    stop = min(first + trouble, last)
    parts = ["----- guest console: the kernel's first report -----", *lines[first:stop]]
    if stop < last:
        parts.append(f"[... {last - stop} lines ...]")
    parts += ["----- guest console (tail) -----", *lines[last:]]
    return "\n".join(parts)

