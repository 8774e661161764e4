"""The guest architectures: what differs between booting Debian's x86_64 and arm64 kernels.

x86_64 boots ``qemu-system-x86_64`` with the host's own root over 9p (same architecture).
x86_64-new is the same guest booting Debian's newer kernel from bookworm-backports (6.12: struct
module's mem[] layout, IBT/endbr64 prologues, compressed modules), fetched through a private apt
state (the host's apt sources are not touched); the kernel-inspection tests run on it too.
arm64 boots ``qemu-system-aarch64 -M virt`` (TCG only on an x86_64 host) with a root assembled
from arm64 ``.deb``s (tests/guest/rootfs.py), which also holds the kernel package, its modules
and headers.  Pure data: no side effects here.
"""
import dataclasses
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class GuestArch:
    name: str               # x86_64 | arm64: what tests and logs call it
    deb_arch: str           # Debian's architecture name
    metapackage: str        # its kernel metapackage (names the current kernel version)
    qemu: str               # the qemu binary
    qemu_package: str       # the Debian package shipping it
    machine: tuple          # qemu machine/cpu arguments for TCG
    console: str            # the guest's serial console device (no /dev/)
    marker: str             # the pytest marker selecting its tests
    own_root: bool          # True: the guest's root is an assembled foreign root, not the host's
    kvm_possible: bool      # the host can run it under KVM (same architecture)
    default_memory: str
    kernel_suite: str = ""  # "": the host's apt sources; else a Debian suite fetched privately
    mem_env: str = "GDB_TOOLKIT_GUEST_MEM"      # qemu -m override
    cpu_env: str = "GDB_TOOLKIT_GUEST_CPU"      # TCG -cpu override
    kernel_env: str = "GDB_TOOLKIT_GUEST_KERNEL"    # kernel version override
    # TCG's vCPU threading: "multi" (a host thread per vCPU) or "single" (one host thread
    # round-robins the vCPUs).  See X86_64 for why x86_64 runs single.
    tcg_threads: str = "multi"
    tcg_threads_env: str = "GDB_TOOLKIT_GUEST_TCG_THREADS"

    @property
    def version_suffix(self) -> str:
        return "-" + self.deb_arch

    def cpu(self) -> str:
        env = os.environ.get(self.cpu_env)
        return env or dict(self.machine).get("-cpu", "max")

    def tcg_accel(self) -> str:
        """qemu's -accel value under TCG."""
        threads = os.environ.get(self.tcg_threads_env) or self.tcg_threads
        if threads not in ("single", "multi"):
            raise ValueError(f"{self.tcg_threads_env}={threads!r}: use single or multi")
        return f"tcg,thread={threads}"

    def cmdline(self) -> str:
        # unknown_nmi_panic: the host's watchdog sends an NMI to a guest that stopped its
        # heartbeat, so a silent hang still ends with every CPU's backtrace on the console
        extra = " 8250.nr_uarts=1 unknown_nmi_panic" if self.deb_arch == "amd64" else ""
        # softlockup_panic + panic_print=0x40: a soft-locked guest panics at once (panic=-1:
        # qemu exits) with the stuck CPU's and every other CPU's backtrace on the console
        # (panic turns the console verbose), instead of printing "stuck for Ns" until the
        # run's timeout.  oops=panic: an Oops (TCG has oopsed in kprobe text patching while
        # another vCPU ran the code) ends the guest like a panic, so the tests it did not finish
        # run again in a second boot, instead of running on a broken kernel and failing.
        # Appended: the first 80 bytes show in a vmcore's psargs (docs).
        return (f"console={self.console} quiet loglevel=3 panic=-1 mitigations=off "
                f"random.trust_cpu=on{extra} rdinit=/init softlockup_panic=1 panic_print=0x40 "
                "oops=panic")


# tcg_threads="single": under multi-threaded TCG (QEMU 7.2) Debian's 6.1 kernel hangs in its
# own text patching: one vCPU waits in a patch's sync IPI (text_poke_bp_batch, arch_arm_kprobe)
# for the other, which spins in exc_int3 at a patched site with interrupts off.  The guest
# suite's kernel died in three full runs (soft lockups, an oops in kprobe patching, a silent
# hang); `tests/guest/text_poke_stress.sh` hangs it within a minute (and oopses 6.12,
# x86_64-new, within seconds: a stale int3 run after the patch).  One host thread for both
# vCPUs makes cross-vCPU patching safe; the guest is still SMP (docs/guest.md, 4c).
X86_64 = GuestArch(
    name="x86_64", deb_arch="amd64", metapackage="linux-image-amd64",
    qemu="qemu-system-x86_64", qemu_package="qemu-system-x86",
    machine=(("-cpu", "max"),), console="ttyS0", marker="guest", own_root=False,
    kvm_possible=True, default_memory="4G", tcg_threads="single")

# pauth-impdef=on: QEMU's cheap pointer-authentication algorithm instead of QARMA (plain
# `-cpu max` boots in ~10 s instead of 3-6 s); the kernel's PAC instructions still execute.
ARM64 = GuestArch(
    name="arm64", deb_arch="arm64", metapackage="linux-image-arm64",
    qemu="qemu-system-aarch64", qemu_package="qemu-system-arm",
    machine=(("-M", "virt"), ("-cpu", "max,pauth-impdef=on")), console="ttyAMA0",
    marker="guest_arm64", own_root=True, kvm_possible=False, default_memory="2G",
    mem_env="GDB_TOOLKIT_GUEST_ARM64_MEM", cpu_env="GDB_TOOLKIT_GUEST_ARM64_CPU",
    kernel_env="GDB_TOOLKIT_GUEST_ARM64_KERNEL")

# The x86_64 guest on Debian's newer kernel (bookworm-backports: 6.12 in December 2026): same
# qemu, same host root; the kernel comes through a private apt state under the guest cache.
# 2G, not 4G: no bcc in its test set (clang was why x86_64 has 4G), and its ELF vmcores are half
# the size (a 4 GiB dump + its reading took 148 s of a loaded TCG guest).
X86_64_NEW = dataclasses.replace(
    X86_64, name="x86_64-new", marker="guest_newkernel", kernel_suite="bookworm-backports",
    kernel_env="GDB_TOOLKIT_GUEST_NEW_KERNEL", mem_env="GDB_TOOLKIT_GUEST_NEW_MEM",
    default_memory="2G")

ARCHES = {"x86_64": X86_64, "amd64": X86_64, "arm64": ARM64, "aarch64": ARM64,
          "x86_64-new": X86_64_NEW, "new": X86_64_NEW}


def get_arch(name: str | None) -> GuestArch:
    """The architecture called *name* (x86_64/amd64, arm64/aarch64); None means x86_64."""
    if name is None:
        return X86_64
    try:
        return ARCHES[name.lower()]
    except KeyError:
        raise ValueError(f"guest architecture {name!r}: use x86_64, arm64 or x86_64-new "
                         "(Debian's newer kernel from bookworm-backports)") from None
