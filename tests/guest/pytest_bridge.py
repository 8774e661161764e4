"""Host-side pytest integration for ``@pytest.mark.guest`` (x86_64) and
``@pytest.mark.guest_arm64`` (arm64) tests.

On the host, every selected guest-marked test is replaced by a GuestItem with the same node id.
The first one of each architecture to run boots ONE guest of that architecture that runs all its
selected tests (pytest inside, same checkout, ``-m guest`` / ``-m guest_arm64``); each GuestItem
then reports the guest's outcome for its own test: pass, fail with the guest's failure text, skip
with the guest's reason.  If a guest cannot be prepared or booted, every test of its architecture
FAILS with the reason.

Inside the guest (GDB_TOOLKIT_IN_GUEST=1) nothing is replaced: the tests run for real.
GDB_TOOLKIT_SKIP_GUEST=1 skips them on the host (developers' quick runs only);
GDB_TOOLKIT_SKIP_GUEST=arm64 (or x86_64, x86_64-new) skips one guest's.
"""
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .arch import ARM64, X86_64, X86_64_NEW, GuestArch
from .results import (Outcome, collect_errors, console_excerpt, kernel_trouble, outcomes,
                      parse_lines, result_key)

IN_GUEST = "GDB_TOOLKIT_IN_GUEST"
SKIP_GUEST = "GDB_TOOLKIT_SKIP_GUEST"
TIMEOUT_ENV = "GDB_TOOLKIT_GUEST_TIMEOUT"
DEFAULT_TIMEOUT = 2400
#: a guest kernel that dies mid-run gets more boots for the tests it did not finish, up to
#: this many in all (CI once saw the x86_64 TCG guest die in its first and its second boot)
BOOT_NAMES = ("first", "second", "third")
#: another boot only with at least this much of the guest's timeout left (seconds)
RETRY_MIN_LEFT = 600
REPO = Path(__file__).resolve().parents[2]


def console_log_path(arch: GuestArch = X86_64, boot: str = "") -> Path:
    """The last guest console of this checkout and architecture (overwritten by each run);
    *boot* "-boot1": the first boot's, when a second one ran the tests it did not finish."""
    tag = hashlib.sha256(str(REPO).encode()).hexdigest()[:8]
    suffix = "" if arch is X86_64 else f"-{arch.name}"
    return Path(tempfile.gettempdir()) / f"gdb_toolkit-guest-console{suffix}{boot}-{tag}.log"


def in_guest() -> bool:
    return os.environ.get(IN_GUEST) == "1"


def guest_pytest_argv(test_ids: list[str], marker: str = X86_64.marker) -> list[str]:
    """The in-guest command: pytest on exactly these tests, no cache writes, JSON reports."""
    return ["/usr/bin/python3", "-m", "pytest", "-p", "no:cacheprovider",
            "-p", "tests.guest.report_plugin", "-q", "-rfEs", "-m", marker,
            "--rootdir", str(REPO), *test_ids]


GUEST_ARCHES = (X86_64, ARM64, X86_64_NEW)


def item_arch(item) -> GuestArch | None:
    """Which guest runs this test: ``guest`` -> x86_64, ``guest_arm64`` -> arm64,
    ``guest_newkernel`` -> x86_64 on Debian's newer kernel, else None."""
    if item.get_closest_marker(X86_64_NEW.marker):
        return X86_64_NEW
    if item.get_closest_marker(ARM64.marker):
        return ARM64
    if item.get_closest_marker(X86_64.marker):
        return X86_64
    return None


def skipped_arches(value: str | None) -> set[str]:
    """GDB_TOOLKIT_SKIP_GUEST: "1" skips every architecture; a comma list names some."""
    if not value or value == "0":
        return set()
    if value == "1":
        return {a.name for a in GUEST_ARCHES}
    from .arch import get_arch
    names = set()
    for part in value.split(","):
        try:
            names.add(get_arch(part.strip()).name)
        except ValueError:
            names |= {a.name for a in GUEST_ARCHES}      # unknown word: skip all, as "1"
    return names


class GuestFailure(Exception):
    """A guest test failed (or could not run) in the guest; str() is the guest's text."""


class GuestRun:
    """The one guest boot shared by every GuestItem of the session."""

    def __init__(self, config, items, arch: GuestArch = X86_64):
        self.config = config
        self.arch = arch
        self.keys = [result_key(str(i.path), i.nodeid) for i in items]
        self.test_ids = [f"{i.path}::{i.nodeid.split('::', 1)[1]}" for i in items]
        self.done = False
        self.error = None          # the reason every test fails, if the guest did not run
        self.results: dict[str, Outcome] = {}
        self.extra = ""            # collection errors / console tail for missing tests
        self.summary = ""
        self.retried = ""          # why later boots ran the tests an earlier one did not finish

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
        timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
        self._say(f"\nguest: booting Debian's {self.arch.name} kernel under QEMU for "
                  f"{len(self.keys)} guest test(s) (timeout {timeout:.0f} s)")
        t0 = time.monotonic()
        try:
            res, rows = self._boot(self.test_ids, timeout)
            self.results = outcomes(rows)
            boots = 1
            retry = self._retry_plan(res, time.monotonic() - t0, timeout)
            while retry:
                trouble, ids = retry
                log = self._save_console(res, f"-boot{boots}")
                nth = BOOT_NAMES[boots]
                self._say(f"guest: the {self.arch.name} kernel died mid-run ({trouble.strip()}; "
                          f"console: {log}); the {len(ids)} test(s) it did not finish run "
                          f"again in a {nth} boot (at most {len(BOOT_NAMES)} boots)")
                res, rows = self._boot(ids, timeout - (time.monotonic() - t0))
                boots += 1
                finished = 0
                for key, outcome in outcomes(rows).items():
                    if self.results.get(key, Outcome("missing")).outcome == "missing":
                        self.results[key] = outcome
                        finished += outcome.outcome != "missing"
                self.retried += f"; {nth} boot for {len(ids)} test(s) after: {trouble.strip()}"
                # another boot only after one that got somewhere: a kernel that dies before
                # finishing a test would die the same way again
                retry = self._retry_plan(res, time.monotonic() - t0, timeout) \
                    if finished and boots < len(BOOT_NAMES) else None
        except GuestError as exc:
            self.error = f"{self.arch.name} guest could not be prepared: {exc}"
            self.summary = "guest: " + self.error
            return
        except Exception as exc:  # noqa: BLE001 -- reported on every guest test
            self.error = f"guest harness crashed: {type(exc).__name__}: {exc}"
            self.summary = "guest: " + self.error
            return
        log = self._save_console(res)
        log_note = f"; console: {log}" if log else ""
        excerpt = console_excerpt(res.console)
        errs = collect_errors(rows)
        if res.status is None:
            self.error = f"{res.error}\n{excerpt}"
        self.extra = ("\n".join(errs) + "\n" if errs else "") + \
            f"guest pytest exit status {res.status}\n{excerpt}"
        boot = f"{res.boot_seconds:.1f} s" if res.boot_seconds is not None else "not reached"
        reported = sum(1 for o in self.results.values() if o.outcome != "missing")
        self.summary = (f"guest: kernel {res.kernel} ({res.accel}): boot {boot}, "
                        f"{reported}/{len(self.keys)} guest tests reported, "
                        f"guest total {time.monotonic() - t0:.1f} s, "
                        f"guest pytest exit {res.status}{log_note}{self.retried}")
        self._say(self.summary)

    def _boot(self, test_ids: list[str], timeout: float):
        """One guest boot running *test_ids*: its GuestResult and the in-guest report rows."""
        from .vm import run_in_guest
        xfer = Path(tempfile.mkdtemp(prefix="gtk-guest-pytest-"))
        try:
            kw = {} if self.arch is X86_64 else {"arch": self.arch}
            res = run_in_guest(guest_pytest_argv(test_ids, self.arch.marker),
                               timeout=timeout, cwd=str(REPO), xfer=xfer, log=self._say, **kw)
            rows = parse_lines((xfer / "results.jsonl").read_text(errors="replace")
                               if (xfer / "results.jsonl").is_file() else "")
            return res, rows
        finally:
            shutil.rmtree(xfer, ignore_errors=True)

    def _retry_plan(self, res, elapsed: float, timeout: float):
        """(the kernel's first report, the unfinished test ids) when the guest's kernel died
        mid-run (a panic or lockup on its console, or a heartbeat the watchdog saw stop; no exit
        status) with at least RETRY_MIN_LEFT seconds of the timeout left; else None.  The last
        boot's outcome stands, whatever it is, and each earlier boot's console is kept."""
        trouble = kernel_trouble(res.console) or res.stalled
        if res.status is not None or trouble is None or timeout - elapsed < RETRY_MIN_LEFT:
            return None
        ids = [tid for key, tid in zip(self.keys, self.test_ids)
               if self.results.get(key, Outcome("missing")).outcome == "missing"]
        return (trouble, ids) if ids else None

    def _save_console(self, res, suffix: str = "") -> str:
        log = console_log_path(self.arch, suffix)
        try:
            log.write_text(res.console.replace("\r", ""))
            return str(log)
        except OSError:
            return ""

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
        self.runs: dict[str, GuestRun] = {}

    @property
    def run(self):      # the x86_64 run (older callers)
        return self.runs.get(X86_64.name)

    @pytest.hookimpl(trylast=True)  # after -k/-m deselection
    def pytest_collection_modifyitems(self, session, config, items):
        if in_guest():
            return
        by_arch: dict[str, list] = {}
        for i in items:
            arch = item_arch(i)
            if arch is not None:
                by_arch.setdefault(arch.name, []).append(i)
        if not by_arch:
            return
        skip = skipped_arches(os.environ.get(SKIP_GUEST))
        value = os.environ.get(SKIP_GUEST)
        for arch in GUEST_ARCHES:
            group = by_arch.get(arch.name)
            if not group:
                continue
            if arch.name in skip:
                mark = pytest.mark.skip(reason=f"{SKIP_GUEST}={value}: {arch.name} guest "
                                               "(real kernel) tests skipped")
                for i in group:
                    i.add_marker(mark)
                continue
            self.runs[arch.name] = GuestRun(config, group, arch)
        for idx, item in enumerate(items):
            arch = item_arch(item)
            if arch is not None and arch.name in self.runs:
                items[idx] = GuestItem.from_parent(item.parent, name=item.name,
                                                   run=self.runs[arch.name], original=item)

    def pytest_terminal_summary(self, terminalreporter):
        lines = [r.summary for r in self.runs.values() if r.summary]
        if lines:
            terminalreporter.write_sep("-", "guest")
            for line in lines:
                terminalreporter.write_line(line)
