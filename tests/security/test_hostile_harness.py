"""The hostile harness measures gdb's own peak memory, whatever the test process holds.

A child forked from pytest starts with pytest's resident pages and the kernel keeps that
high-water mark in ru_maxrss across exec, so late in a run (pytest at 500+ MB) every hostile
case "peaked" above its limit.  Oracle: the bytes gdb's Python is told to allocate."""
from tests.support.hostile import assert_survived, run_hostile


def test_peak_rss_is_gdbs_not_the_test_process():
    ballast = b"x" * (600 << 20)          # this process now holds 600 MB resident
    run = run_hostile(["python pass"], timeout=120)
    assert_survived(run)
    assert run.peak_rss_mb < 300, run.describe()
    assert len(ballast) == 600 << 20


def test_peak_rss_sees_what_gdb_allocates():
    run = run_hostile(["python big = b'y' * (400 << 20)"], timeout=120)
    assert run.alive, run.describe()
    assert run.peak_rss_mb >= 400, run.describe()


def test_a_gdb_killed_by_a_signal_is_reported_as_such():
    run = run_hostile(["python import os, signal; os.kill(os.getpid(), signal.SIGABRT)"], timeout=120)
    assert not run.alive
    assert run.result.returncode == -6, run.describe()
