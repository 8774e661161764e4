"""Host-side pytest integration for ``@pytest.mark.guest`` tests.

On the host, every selected guest-marked test is replaced by a GuestItem with the same node id.
The first one to run boots ONE guest that runs all selected guest tests (pytest inside, same
checkout, ``-m guest``); each GuestItem then reports the guest's outcome for its own test:
pass, fail with the guest's failure text, skip with the guest's reason.  If the guest cannot
be prepared or booted, every guest test FAILS with the reason.

Inside the guest (GDB_TOOLKIT_IN_GUEST=1) nothing is replaced: the tests run for real.
GDB_TOOLKIT_SKIP_GUEST=1 skips them on the host (developers' quick runs only).
"""
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .results import Outcome, collect_errors, outcomes, parse_lines, result_key

IN_GUEST = "GDB_TOOLKIT_IN_GUEST"
SKIP_GUEST = "GDB_TOOLKIT_SKIP_GUEST"
TIMEOUT_ENV = "GDB_TOOLKIT_GUEST_TIMEOUT"
DEFAULT_TIMEOUT = 2400
REPO = Path(__file__).resolve().parents[2]


def console_log_path() -> Path:
    """The last guest console of this checkout (overwritten by each run, one per checkout)."""
    tag = hashlib.sha256(str(REPO).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"gdb_toolkit-guest-console-{tag}.log"


def in_guest() -> bool:
    return os.environ.get(IN_GUEST) == "1"


def guest_pytest_argv(test_ids: list[str]) -> list[str]:
    """The in-guest command: pytest on exactly these tests, no cache writes, JSON reports."""
    return ["/usr/bin/python3", "-m", "pytest", "-p", "no:cacheprovider",
            "-p", "tests.guest.report_plugin", "-q", "-rfEs", "-m", "guest",
            "--rootdir", str(REPO), *test_ids]


class GuestFailure(Exception):
    """A guest test failed (or could not run) in the guest; str() is the guest's text."""


class GuestRun:
    """The one guest boot shared by every GuestItem of the session."""

    def __init__(self, config, items):
        self.config = config
        self.keys = [result_key(str(i.path), i.nodeid) for i in items]
        self.test_ids = [f"{i.path}::{i.nodeid.split('::', 1)[1]}" for i in items]
        self.done = False
        self.error = None          # the reason every test fails, if the guest did not run
        self.results: dict[str, Outcome] = {}
        self.extra = ""            # collection errors / console tail for missing tests
        self.summary = ""

    def _say(self, msg: str):
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if tr is None:
            print(msg, file=sys.stderr)
        elif capman is not None:
            with capman.global_and_fixture_disabled():   # live, not into the test's capture
                tr.write_line(msg)
        else:
            tr.write_line(msg)

    def ensure(self):
        if self.done:
            return
        self.done = True
        from .kernel import GuestError
        from .vm import run_in_guest
        timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
        xfer = Path(tempfile.mkdtemp(prefix="gtk-guest-pytest-"))
        self._say(f"\nguest: booting Debian's kernel under QEMU for {len(self.keys)} guest "
                  f"test(s) (timeout {timeout:.0f} s)")
        t0 = time.monotonic()
        try:
            res = run_in_guest(guest_pytest_argv(self.test_ids), timeout=timeout, cwd=str(REPO),
                               xfer=xfer, log=self._say)
            rows = parse_lines((xfer / "results.jsonl").read_text(errors="replace")
                               if (xfer / "results.jsonl").is_file() else "")
        except GuestError as exc:
            self.error = f"guest could not be prepared: {exc}"
            self.summary = "guest: " + self.error
            return
        except Exception as exc:  # noqa: BLE001 -- reported on every guest test
            self.error = f"guest harness crashed: {type(exc).__name__}: {exc}"
            self.summary = "guest: " + self.error
            return
        finally:
            shutil.rmtree(xfer, ignore_errors=True)
        self.results = outcomes(rows)
        console = res.console.replace("\r", "")
        log = console_log_path()
        try:
            log.write_text(console)
            log_note = f"; console: {log}"
        except OSError:
            log_note = ""
        tail = "\n".join(console.splitlines()[-40:])
        errs = collect_errors(rows)
        if res.status is None:
            self.error = f"{res.error}\n----- guest console (tail) -----\n{tail}"
        self.extra = ("\n".join(errs) + "\n" if errs else "") + \
            f"guest pytest exit status {res.status}; console tail:\n{tail}"
        boot = f"{res.boot_seconds:.1f} s" if res.boot_seconds is not None else "not reached"
        self.summary = (f"guest: kernel {res.kernel} ({res.accel}): boot {boot}, "
                        f"{len(self.results)}/{len(self.keys)} guest tests reported, "
                        f"guest total {time.monotonic() - t0:.1f} s, "
                        f"guest pytest exit {res.status}{log_note}")
        self._say(self.summary)

    def outcome(self, key: str) -> Outcome:
        self.ensure()
        res = self.results.get(key)
        if res is not None and res.outcome != "missing":
            return res          # reported before any later crash/timeout: it stands
        if self.error:
            return Outcome("failed", self.error)
        return Outcome("missing", f"the guest did not finish this test.\n{self.extra}")


class GuestItem(pytest.Item):
    """Stands in on the host for a guest-marked test; reports the guest's outcome."""

    def __init__(self, *, run: GuestRun, original, **kw):
        super().__init__(**kw)
        self.run_ = run
        self.key = result_key(str(original.path), original.nodeid)
        self._location = original.location
        self.own_markers = list(original.own_markers)
        self.keywords.update(original.keywords)

    def runtest(self):
        res = self.run_.outcome(self.key)
        if res.outcome == "passed":
            return
        if res.outcome == "skipped":
            pytest.skip(f"in guest: {res.text}")
        if res.outcome == "xfailed":
            pytest.xfail(f"in guest: {res.text}")
        raise GuestFailure(res.text)

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(GuestFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, self._location[1], self._location[2]


class Bridge:
    """Registered as a pytest plugin by tests/conftest.py."""

    def __init__(self):
        self.run = None

    @pytest.hookimpl(trylast=True)  # after -k/-m deselection
    def pytest_collection_modifyitems(self, session, config, items):
        guest = [i for i in items if i.get_closest_marker("guest")]
        if not guest or in_guest():
            return
        if os.environ.get(SKIP_GUEST) == "1":
            mark = pytest.mark.skip(reason=f"{SKIP_GUEST}=1: guest (real kernel) tests skipped")
            for i in guest:
                i.add_marker(mark)
            return
        self.run = GuestRun(config, guest)
        for idx, item in enumerate(items):
            if item.get_closest_marker("guest"):
                items[idx] = GuestItem.from_parent(item.parent, name=item.name, run=self.run,
                                                   original=item)

    def pytest_terminal_summary(self, terminalreporter):
        if self.run is not None and self.run.summary:
            terminalreporter.write_sep("-", "guest")
            terminalreporter.write_line(self.run.summary)
