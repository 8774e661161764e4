"""The guest harness's hang watchdog, on a real x86_64 guest (Debian's 6.1 under QEMU).

CI once lost 40 minutes to an x86_64 TCG guest that hung with nothing on its console.  /init
now writes a heartbeat into the exchange share while the command runs, and the host ends a guest
whose heartbeat stops: it sends an NMI (the kernel, booted with unknown_nmi_panic, panics with
every CPU's backtrace) and kills qemu if that does not end it.  Here the command stops every
other process (the heartbeat loop too) and sleeps; the oracle is the guest kernel's own panic on
its console and how soon qemu is gone.  A host test, not a guest-marked one: it boots its own
guest, and runs unless GDB_TOOLKIT_SKIP_GUEST skips the x86_64 guest.
"""
import os

import pytest

from tests.guest.pytest_bridge import SKIP_GUEST, skipped_arches
from tests.guest.results import kernel_trouble

STALL = 20          # seconds of silence the watchdog allows here (CI's default is 180)

pytestmark = pytest.mark.skipif(
    "x86_64" in skipped_arches(os.environ.get(SKIP_GUEST)),
    reason=f"{SKIP_GUEST}={os.environ.get(SKIP_GUEST)}: x86_64 guest (real kernel) tests skipped")


def test_a_guest_whose_heartbeat_stops_is_ended_with_its_kernels_backtraces(monkeypatch):
    from tests.guest.vm import NMI_GRACE, run_in_guest
    monkeypatch.setenv("GDB_TOOLKIT_GUEST_STALL", str(STALL))
    res = run_in_guest(["/bin/sh", "-c", "kill -STOP -1; echo stopped everything; sleep 900"],
                       timeout=600)
    assert res.boot_seconds is not None, f"the guest did not boot: {res.error}\n{res.console[-3000:]}"
    assert "stopped everything" in res.output, res.console[-3000:]
    assert res.status is None and res.stalled and res.error == res.stalled, res.error
    assert "no heartbeat for" in res.stalled and "an NMI asked it" in res.stalled, res.stalled
    # the kernel's own words: the NMI panic, with a backtrace
    trouble = kernel_trouble(res.console)
    assert trouble is not None and "NMI" in res.console[res.console.index(trouble):], \
        res.console[-3000:]
    assert "Call Trace:" in res.console, res.console[-3000:]
    # ended soon after the silence, not at the 600 s timeout
    assert res.total_seconds < res.boot_seconds + STALL + NMI_GRACE + 60, res.total_seconds
