"""A stand-in for gdb_toolkit.ktrace.worker speaking the same protocol (for unit tests).

The spec's function selects the behaviour: fake_ok (armed, `count` events, end),
fake_error (error, end), fake_die (exits without a word), fake_hang (armed, then
waits for SIGINT and ends 'stopped'), fake_garbage (non-JSON noise, then ok).
"""
import json
import os
import signal
import sys
import time


def out(kind, **kw):
    sys.stdout.write(json.dumps({"type": kind, **kw}) + "\n")
    sys.stdout.flush()


def main():
    spec = json.loads(sys.stdin.readline())
    fn = spec["function"]
    if fn == "fake_die":
        sys.exit(3)
    if fn == "fake_error":
        out("error", cause="cannot trace x: no kprobes in this kernel", fix="boot a kernel with kprobes")
        out("end", reason="error", events=0, detached=True)
        return
    if fn == "fake_garbage":
        print("WARNING: noise from libbcc", flush=True)
    stop = {"v": False}
    signal.signal(signal.SIGINT, lambda *a: stop.update(v=True))
    out("armed", attach_method="kprobe", traced_function=spec.get("fallbacks") and "expand_downwards" or fn,
        requested=fn, note="fake", programs=["gtk_kt_entry"], skipped=[], headers="/fake", notes=[],
        compile_s=0.1, attach_s=0.01, unavailable={}, worker_pid=os.getpid())
    if fn == "fake_hang":
        while not stop["v"]:
            time.sleep(0.02)
        out("end", reason="stopped", events=0, detached=True)
        return
    n = spec.get("count") or 2
    for i in range(n):
        out("event", time_ns=1000 + i, wall_ns=0, pid=spec.get("pid") or 42, tid=42, comm="prog",
            task=0xffff888000001000 + i, args={"size": 16588800 + i}, retval=-12, stack=["a+0x1"],
            fields={}, function=fn)
    out("end", reason="count", events=n, detached=True)


if __name__ == "__main__":
    main()
