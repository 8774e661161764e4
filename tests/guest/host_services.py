"""Things only the host can do for a guest test: dump the guest's memory and look at the
halted guest through QEMU's gdbstub.

A guest test cannot reach QEMU's monitor or gdbstub (the guest has no network), so it asks
through the exchange share: it writes ``/run/gtk/req-<id>.json`` and waits for
``res-<id>.json`` (``request()`` below, for use inside the guest).  The host side
(``HostServices``, run by vm.py next to qemu) polls the share and serves:

- ``{"op": "dump", "name": N, "format": "elf" | "kdump-zlib"}``: QMP ``dump-guest-memory``
  (the VM pauses for it) into the share as N; QEMU's ``-device vmcoreinfo`` puts the guest
  kernel's VMCOREINFO in the dump once the guest has loaded ``qemu_fw_cfg``.
- ``{"op": "gdb", "commands": [...], "timeout": S}``: the host's gdb with the toolkit, ``target
  remote`` to the gdbstub (which halts the VM while gdb is attached), the commands, then
  ``detach`` (the VM runs on); answers stdout, stderr, exit status.  Only toolkit kernel
  commands, ``echo``, ``kcore`` and ``print``/``thread`` are accepted.
"""
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GDB_ALLOWED = ("kcore", "kprobe-list", "kprobe-show", "kdis", "kx", "ksym", "ftrace-site", "ktask",
               "ktypes", "echo", "print", "thread", "info threads", "set width")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HostServices:
    """Serves one guest's requests; ``qemu_args()`` before starting qemu, then ``start()``."""

    def __init__(self, xfer: Path):
        self.xfer = Path(xfer)
        self.dir = Path(tempfile.mkdtemp(prefix="gtk-qmp-"))
        self.qmp = self.dir / "qmp.sock"
        self.port = _free_port()
        self._stop = threading.Event()
        self._thread = None
        self.busy_until = 0.0   # time.time() when the last request ended; inf while one runs

    def qemu_args(self) -> list[str]:
        return ["-device", "vmcoreinfo", "-qmp", f"unix:{self.qmp},server=on,wait=off",
                "-gdb", f"tcp:127.0.0.1:{self.port}"]

    def start(self):
        self._thread = threading.Thread(target=self._loop, name="guest-host-services", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- serving ---------------------------------------------------------------------------
    def _loop(self):
        while not self._stop.wait(0.3):
            for req in sorted(self.xfer.glob("req-*.json")):
                rid = req.name[4:-5]
                try:
                    data = json.loads(req.read_text())
                    req.unlink()
                except (OSError, ValueError):
                    continue
                self.busy_until = float("inf")      # a dump or gdbstub session halts the VM
                try:
                    res = self._serve(data)
                except Exception as exc:        # the answer, not a dead thread
                    res = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                finally:
                    self.busy_until = time.time()
                tmp = self.xfer / f".res-{rid}.tmp"
                tmp.write_text(json.dumps(res))
                os.replace(tmp, self.xfer / f"res-{rid}.json")

    def _serve(self, data: dict) -> dict:
        op = data.get("op")
        if op == "dump":
            return self._dump(str(data["name"]), data.get("format", "elf"))
        if op == "gdb":
            return self._gdb(list(data.get("commands", [])), float(data.get("timeout", 600)))
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _qmp(self, command: dict, timeout: float = 600) -> dict:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(str(self.qmp))
            f = s.makefile("rw")
            json.loads(f.readline())                                   # greeting
            for cmd in ({"execute": "qmp_capabilities"}, command):
                f.write(json.dumps(cmd) + "\n")
                f.flush()
                while True:
                    msg = json.loads(f.readline())
                    if "return" in msg or "error" in msg:
                        break                                          # skip events
                if "error" in msg:
                    return msg
            return msg

    def inject_nmi(self) -> str:
        """Send the guest an NMI (its kernel panics with every CPU's backtrace when booted with
        unknown_nmi_panic); "" or why not (a hung qemu may not answer)."""
        try:
            msg = self._qmp({"execute": "inject-nmi"}, timeout=5)
        except (OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return msg["error"].get("desc", "error") if "error" in msg else ""

    def _dump(self, name: str, fmt: str) -> dict:
        if "/" in name or name.startswith("."):
            return {"ok": False, "error": "bad dump name"}
        out = self.xfer / name
        t = time.monotonic()
        msg = self._qmp({"execute": "dump-guest-memory",
                         "arguments": {"paging": False, "protocol": f"file:{out}", "format": fmt}})
        if "error" in msg:
            return {"ok": False, "error": msg["error"].get("desc", str(msg["error"]))}
        return {"ok": True, "file": name, "size": out.stat().st_size,
                "seconds": round(time.monotonic() - t, 2)}

    def _gdb(self, commands: list[str], timeout: float) -> dict:
        for c in commands:
            if not c.strip().startswith(GDB_ALLOWED):
                return {"ok": False, "error": f"command not allowed here: {c!r}"}
        argv = [shutil.which("gdb") or "gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                "-iex", "set pagination off", "-ex", f"source {REPO / 'gdb_toolkit' / 'gdbinit.py'}",
                "-ex", f"target remote 127.0.0.1:{self.port}"]
        for c in commands:
            argv += ["-ex", c]
        argv += ["-ex", "detach"]
        t = time.monotonic()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, env=dict(os.environ, TERM="dumb"))
        except subprocess.TimeoutExpired as exc:
            return {"ok": False, "error": f"gdb timed out after {timeout} s",
                    "stdout": exc.stdout or "", "stderr": exc.stderr or ""}
        return {"ok": True, "stdout": proc.stdout, "stderr": proc.stderr, "status": proc.returncode,
                "seconds": round(time.monotonic() - t, 2)}


# -- the guest side --------------------------------------------------------------------------------

def request(op: str, timeout: float = 900, **args) -> dict:
    """Ask the host (from inside the guest) and wait for its answer."""
    xfer = Path(os.environ.get("GDB_TOOLKIT_GUEST_XFER", "/run/gtk"))
    rid = secrets.token_hex(6)
    tmp = xfer / f".req-{rid}.tmp"
    tmp.write_text(json.dumps({"op": op, **args}))
    os.replace(tmp, xfer / f"req-{rid}.json")
    res = xfer / f"res-{rid}.json"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if res.exists():
            data = json.loads(res.read_text())
            res.unlink()
            return data
        time.sleep(0.3)
    raise TimeoutError(f"the host did not answer {op} within {timeout} s")


def xfer_path(name: str) -> Path:
    """Where a file the host wrote into the share (a dump) is, inside the guest."""
    return Path(os.environ.get("GDB_TOOLKIT_GUEST_XFER", "/run/gtk")) / name
