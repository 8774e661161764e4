"""CLI: boot Debian's kernel under QEMU and run a command inside.

    /usr/bin/python3 -m tests.guest run [--arch x86_64|arm64|x86_64-new] [--timeout S] [--accel tcg|kvm|auto] [-v] -- CMD ARGS...
    /usr/bin/python3 -m tests.guest shell [--arch arm64]   # interactive root shell; `exit` powers off
    /usr/bin/python3 -m tests.guest prepare [--arch all]   # fetch kernels, headers, arm64 root, initramfs

Exits with CMD's exit status (125 if the guest could not run it).
"""
import argparse
import sys

from .arch import ARM64, X86_64, X86_64_NEW, get_arch
from .initramfs import build_initramfs
from .kernel import GuestError, prepare_kernel
from .results import console_excerpt
from .vm import run_in_guest

NO_STATUS = 125


def _err(msg):
    print(msg, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tests.guest", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run a command in the guest")
    run.add_argument("--timeout", type=float, default=600, help="hard limit in seconds (600)")
    run.add_argument("--accel", choices=["tcg", "kvm", "auto"], default=None,
                     help="default: $GDB_TOOLKIT_GUEST_ACCEL or auto (KVM if it boots within 30 s, else TCG)")
    run.add_argument("-v", "--verbose", action="store_true", help="show the boot console too")
    run.add_argument("--arch", default="x86_64", help="x86_64 (default), arm64 or x86_64-new (bookworm-backports' kernel)")
    run.add_argument("command", nargs=argparse.REMAINDER)
    shell = sub.add_parser("shell", help="an interactive root shell in the guest (exit to power off)")
    shell.add_argument("--timeout", type=float, default=3600)
    shell.add_argument("--accel", choices=["tcg", "kvm", "auto"], default=None)
    shell.add_argument("--arch", default="x86_64", help="x86_64 (default), arm64 or x86_64-new (bookworm-backports' kernel)")
    prep = sub.add_parser("prepare", help="fetch the kernels, assemble the arm64 root, build the initramfs")
    prep.add_argument("--arch", default="all", help="x86_64, arm64, x86_64-new or all (default)")
    args = ap.parse_args(argv)
    try:
        if args.action == "prepare":
            arches = [X86_64, ARM64, X86_64_NEW] if args.arch == "all" else [get_arch(args.arch)]
            for arch in arches:
                kernel = prepare_kernel(log=_err, arch=arch)
                print(f"{arch.name}: kernel {kernel.version}: {kernel.vmlinuz}")
                if kernel.guest_root is not None:
                    print(f"{arch.name}: root {kernel.guest_root}")
                print(f"{arch.name}: initramfs {build_initramfs(kernel, log=_err)}")
            return 0
        interactive = args.action == "shell"
        if interactive:
            cmd = ["/bin/bash", "-i"]
            args.verbose = False
        else:
            cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not cmd:
            ap.error("run: give a command after --")

        def out(text):
            sys.stdout.write(text)
            sys.stdout.flush()

        res = run_in_guest(cmd, timeout=args.timeout, accel=args.accel, stream=out,
                           boot_stream=(lambda t: sys.stderr.write(t)) if args.verbose else None,
                           log=_err, interactive=interactive, arch=args.arch)
    except (GuestError, ValueError) as exc:
        _err(f"guest: {exc}")
        return NO_STATUS
    if res.output and not res.output.endswith("\n"):
        print()
    if res.status is None:
        _err(f"guest: {res.error}")
        if not args.verbose:
            _err("guest: " + console_excerpt(res.console, tail=25))
        return NO_STATUS
    boot = f"{res.boot_seconds:.1f} s" if res.boot_seconds is not None else "?"
    _err(f"guest: {res.kernel} ({res.accel}) boot {boot}, total {res.total_seconds:.1f} s, "
         f"exit status {res.status}")
    return res.status


if __name__ == "__main__":
    sys.exit(main())
