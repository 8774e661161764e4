"""Guest harness timings: boot time and in-guest cost of common steps, host vs guest.

    /usr/bin/python3 bench/guest_boot.py [--boots N] [--accel tcg|kvm|auto]

Each boot runs one script inside the guest that times the same commands this script times on
the host; the table shows both and the ratio (TCG emulation + 9p root).
"""
import argparse
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.guest.initramfs import build_initramfs  # noqa: E402
from tests.guest.kernel import prepare_kernel  # noqa: E402
from tests.guest.vm import run_in_guest  # noqa: E402

STEPS = {
    "sh -c true": ["sh", "-c", "true"],
    "python3 -c pass": ["/usr/bin/python3", "-c", "pass"],
    "pytest --version": ["/usr/bin/python3", "-m", "pytest", "--version"],
    "gdb -batch (python)": ["gdb", "-nx", "-batch", "-ex", "python print(1)"],
    "gcc hello.c": ["sh", "-c", "printf 'int main(void){return 0;}' >/tmp/gtk_b.c && "
                                "gcc -o /tmp/gtk_b /tmp/gtk_b.c"],
}


def host_times() -> dict:
    out = {}
    for name, argv in STEPS.items():
        t = time.monotonic()
        subprocess.run(argv, capture_output=True)
        out[name] = time.monotonic() - t
    return out


def guest_script() -> str:
    lines = []
    for name, argv in STEPS.items():
        cmd = shlex.join(argv)
        lines.append(f's=$(date +%s.%N); {cmd} >/dev/null 2>&1; e=$(date +%s.%N); '
                     f'echo {shlex.quote("STEP " + name)}"|$s|$e"')
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--boots", type=int, default=1)
    ap.add_argument("--accel", default=None)
    args = ap.parse_args()
    t = time.monotonic()
    kernel = prepare_kernel(log=lambda m: None)
    build_initramfs(kernel, log=lambda m: None)
    prep = time.monotonic() - t
    host = host_times()
    boots, totals, guest = [], [], {k: [] for k in STEPS}
    for _ in range(args.boots):
        res = run_in_guest(["sh", "-c", guest_script()], timeout=900, accel=args.accel)
        if res.status != 0:
            sys.exit(f"guest failed: {res.error or res.status}\n{res.output[-2000:]}")
        boots.append(res.boot_seconds)
        totals.append(res.total_seconds)
        for line in res.output.splitlines():
            if line.startswith("STEP "):
                name, s, e = line[5:].split("|")
                guest[name].append(float(e) - float(s))
    print(f"kernel {res.kernel}, accel {res.accel}, {args.boots} boot(s); "
          f"prepare (cached) {prep:.2f} s")
    print(f"boot to command: {statistics.median(boots):.1f} s median "
          f"(min {min(boots):.1f}, max {max(boots):.1f}); whole run {statistics.median(totals):.1f} s")
    print(f"{'step':<22}{'host s':>9}{'guest s':>10}{'ratio':>8}")
    for name in STEPS:
        g = statistics.median(guest[name])
        print(f"{name:<22}{host[name]:>9.3f}{g:>10.3f}{g / max(host[name], 1e-6):>7.0f}x")


if __name__ == "__main__":
    main()
