"""A stand-in for the ktrace bcc worker (GDB_TOOLKIT_KTRACE_WORKER) for hosts without kprobes:
it speaks the worker protocol and reports one refused stack growth of FAKE_SIZE bytes for
the pid it was asked to filter on.  It proves the plumbing of stack-diagnose --kernel, not the
kernel's behaviour (that is the guest test's job)."""
import json
import os
import signal
import sys
import time

spec = json.loads(sys.stdin.readline())
size = int(os.environ.get("FAKE_SIZE", "16592896"))
out = sys.stdout


def emit(kind, **kw):
    out.write(json.dumps({"type": kind, **kw}) + "\n")
    out.flush()


stop = False


def on_int(*_):
    global stop
    stop = True


signal.signal(signal.SIGINT, on_int)
emit("armed", attach_method="kprobe+kretprobe", traced_function="expand_downwards",
     requested=spec["function"], note="fake worker: expand_downwards stands in for "
     f"{spec['function']} (pid filter {spec['pid']})")
# wait until the filtered process has run (it exits or dies), then report what a kernel would
while not stop:
    try:
        os.kill(spec["pid"], 0)
        with open(f"/proc/{spec['pid']}/stat") as fh:
            if fh.read().split(") ")[1][0] in "ZX":
                break
    except (ProcessLookupError, FileNotFoundError):
        break
    time.sleep(0.02)
for sz, rv in ((135168, 0), (size, -12)):
    emit("event", time_ns=time.monotonic_ns(), pid=spec["pid"], tid=spec["pid"], comm="teststack",
         task=0xffff888000000000, args={"size": sz}, retval=rv, function="expand_downwards")
while not stop:
    time.sleep(0.02)
emit("end", reason="stopped", events=2, detached=True)
