"""stack-diagnose --kernel: the kernel's own view of the refused growth.

The real check runs in the QEMU guest on Debian's kernel (kprobes + bcc); on a host without
kprobes --kernel must fail with the reason, and a substitute worker proves the plumbing
(paused re-run, pid filter, clean-up)."""
import os
import subprocess

import pytest

from tests.support.gdbrun import REPO, assert_no_traceback, compile_c, gdb_json, run_gdb

EX = REPO / "examples" / "stack"
FAKE = REPO / "tests" / "support" / "fake_stack_ktrace_worker.py"


def _kprobes_here() -> bool:
    return any(os.path.exists(p) for p in ("/sys/kernel/tracing/kprobe_events",
                                           "/sys/kernel/debug/tracing/kprobe_events",
                                           "/sys/bus/event_source/devices/kprobe"))


def _seed():
    return compile_c(EX / "teststack.c", flags=["-g", "-O0"])


@pytest.mark.gdb
@pytest.mark.skipif(_kprobes_here(), reason="this kernel has kprobes")
def test_kernel_flag_says_why_not_here():
    res = run_gdb(["run", "stack-diagnose --kernel", "echo alive\\n"], program=_seed(),
                  args=["1920", "1080"])
    assert_no_traceback(res)
    err = [l for l in res.stderr.splitlines() if "--kernel" in l]
    assert len(err) == 1 and "no kprobes" in err[0] and "Fix:" in err[0]
    assert "alive" in res.stdout


@pytest.mark.gdb
def test_kernel_plumbing_with_a_substitute_worker():
    prog = _seed()
    env = {"GDB_TOOLKIT_KTRACE_WORKER": f"/usr/bin/python3 {FAKE}", "FAKE_SIZE": "16592896"}
    doc = gdb_json(["run"], "stack-diagnose --kernel", program=prog, args=["1920", "1080"], env=env)
    k = doc["kernel"]
    assert k["argv"][1:] == ["1920", "1080"] and os.path.samefile(k["argv"][0], prog)
    assert k["exit"] == "killed by SIGSEGV"            # the re-run really faulted
    assert f"pid filter {k['pid']}" in k["attach_note"]        # the probe was filtered on the re-run
    assert k["refused"][-1]["errno_name"] == "-ENOMEM"
    assert k["user_growth_bytes"] == doc["growth_requested_bytes"]
    left = subprocess.run(["pgrep", "-f", str(FAKE)], capture_output=True, text=True).stdout
    assert not left.strip()                              # the worker was stopped


@pytest.mark.guest
def test_kernel_view_on_a_real_kernel():
    """Inside the guest: the kernel's own acct_stack_growth (or the caller it is inlined into)
    refuses the seed's growth with -ENOMEM, for about the size user space computed."""
    prog = _seed()
    doc = gdb_json(["run"], "stack-diagnose --kernel", program=prog, args=["1920", "1080"],
                   timeout=1200)
    assert doc["verdict"] == "rlimit"
    k = doc["kernel"]
    assert k["traced_function"] in ("acct_stack_growth", "expand_downwards", "expand_stack")
    assert k["exit"] == "killed by SIGSEGV"
    refused = k["refused"]
    assert refused and refused[-1]["retval"] == -12
    if refused[-1]["size"] is not None:
        # the re-run has another layout, but asks for the same 15.8 MiB give or take a few pages
        assert abs(refused[-1]["size"] - doc["growth_requested_bytes"]) < (1 << 20)
        assert refused[-1]["size"] > doc["rlimit_soft_bytes"]


@pytest.mark.guest
def test_kernel_rerun_as_the_owner_on_a_real_kernel():
    """Inside the guest: a program running as nobody with LD_PRELOAD is re-run as nobody,
    without it, and the real kernel still refuses its growth."""
    import shutil
    import tempfile
    from pathlib import Path

    top = Path(tempfile.mkdtemp(prefix="stack-owner-", dir="/tmp"))   # nobody may traverse it
    os.chmod(top, 0o755)
    prog = top / "ts"
    shutil.copy(_seed(), prog)
    os.chmod(prog, 0o755)
    wrapper = ("set exec-wrapper setpriv --reuid=65534 --regid=65534 --clear-groups env "
               "LD_PRELOAD=/lib/x86_64-linux-gnu/libm.so.6")
    doc = gdb_json([wrapper, "run"], "stack-diagnose --kernel", program=prog, args=["1920", "1080"],
                   timeout=1200)
    k = doc["kernel"]
    assert k["run_as"].startswith("uid 65534") and "LD_PRELOAD" in k["dropped_env"]
    assert k["exit"] == "killed by SIGSEGV" and k["refused"][-1]["retval"] == -12
    shutil.rmtree(top, ignore_errors=True)
