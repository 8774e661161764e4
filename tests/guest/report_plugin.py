"""In-guest pytest plugin (``-p tests.guest.report_plugin``): one JSON line per test report.

Written to $GDB_TOOLKIT_GUEST_XFER/results.jsonl -- the writable 9p share the host reads after
the guest powers off.  Keys come from results.result_key so host and guest agree.
"""
import json
import os

import pytest

from tests.guest.results import result_key

_OUT = None


def _write(row: dict):
    global _OUT
    if _OUT is None:
        base = os.environ.get("GDB_TOOLKIT_GUEST_XFER", ".")
        _OUT = open(os.path.join(base, "results.jsonl"), "a", buffering=1)
    _OUT.write(json.dumps(row) + "\n")
    _OUT.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    row = {"key": result_key(str(item.path), item.nodeid), "nodeid": item.nodeid,
           "when": rep.when, "outcome": rep.outcome,
           "duration": round(rep.duration, 3), "wasxfail": getattr(rep, "wasxfail", None)}
    if rep.skipped and isinstance(rep.longrepr, tuple):
        row["longrepr"] = list(map(str, rep.longrepr))
    elif rep.failed:
        row["longrepr"] = rep.longreprtext
        row["stdout"] = rep.capstdout[-4000:]
        row["stderr"] = rep.capstderr[-4000:]
    _write(row)


def pytest_collectreport(report):
    if report.failed:
        _write({"collect_error": True, "nodeid": report.nodeid, "longrepr": report.longreprtext})


def pytest_sessionfinish(session, exitstatus):
    _write({"session_exit": int(exitstatus)})
