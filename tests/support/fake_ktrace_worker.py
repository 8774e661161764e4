"""A stand-in for gdb_toolkit.ktrace.worker speaking the same protocol (for unit tests).

It serves requests one after the other, as the real worker does.  The requested function
selects the behaviour: fake_ok (armed, `count` events, end), fake_error (error, end),
fake_die (exits without a word), fake_hang (armed, then waits for a stop request or SIGINT and
ends 'stopped'), fake_garbage (non-JSON noise, then ok), fake_bye (says bye and leaves, as an
idle worker does).  Each `armed` carries the worker's pid and how many traces it served.
"""
import json
import os
import signal
import sys
import threading
import time
import queue


def out(kind, **kw):
    sys.stdout.write(json.dumps({"type": kind, **kw}) + "\n")
    sys.stdout.flush()


requests: "queue.Queue" = queue.Queue()
stop = threading.Event()


def reader():
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("type") == "stop":
            stop.set()
        else:
            requests.put(msg)
    requests.put(None)
    stop.set()


def serve(spec, served):
    fn = spec["function"]
    if fn == "fake_die":
        sys.exit(3)
    if fn == "fake_bye":
        out("bye", reason="idle")
        sys.exit(0)
    if fn == "fake_error":
        out("error", cause="cannot trace x: no kprobes in this kernel", fix="boot a kernel with kprobes")
        out("end", reason="error", events=0, detached=True)
        return
    if fn == "fake_garbage":
        print("WARNING: noise from libbcc", flush=True)
    out("armed", attach_method="kprobe", traced_function=spec.get("fallbacks") and "expand_downwards" or fn,
        requested=fn, note="fake", programs=["gtk_kt_entry"], skipped=[], headers="/fake",
        notes=spec.get("notes") or [], compile_s=0.1, attach_s=0.01, unavailable={},
        worker_pid=os.getpid(), warm=served > 0, loader="assembled")
    if fn == "fake_hang":
        while not stop.is_set():
            time.sleep(0.02)
        out("end", reason="stopped", events=0, detached=True)
        return
    n = spec.get("count") or 2
    for i in range(n):
        out("event", time_ns=1000 + i, wall_ns=0, pid=spec.get("pid") or 42, tid=42, comm="prog",
            task=0xffff888000001000 + i, args={"size": 16588800 + i}, retval=-12, stack=[[0xffffffff81000001, "a", 1, None]],
            fields={}, function=fn)
    out("end", reason="count", events=n, detached=True)


def main():
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    threading.Thread(target=reader, daemon=True).start()
    served = 0
    while True:
        spec = requests.get()
        if spec is None:
            out("bye", reason="parent gone")
            return
        stop.clear()
        serve(spec, served)
        served += 1


if __name__ == "__main__":
    main()
