"""Judge HostFacts: one Check per capability, with why not and the fix.  Pure."""
from gdb_toolkit.common.deps import fix_for
from gdb_toolkit.common.record import field, record
from gdb_toolkit.doctor.host_facts import HostFacts

OK, MISSING, LIMITED, INFO = "ok", "missing", "limited", "info"


@record
class Check:
    name: str
    state: str           # ok | missing | limited | info
    detail: str
    fix: str = ""
    used_by: str = ""


@record
class DoctorReport:
    checks: list[Check]
    notes: list = field(default_factory=list)    # human sentences (docs/json.md: every result has them)

    @property
    def missing(self) -> list[Check]:
        return [c for c in self.checks if c.state in (MISSING, LIMITED)]


def _dep(facts: HostFacts, module: str, label: str, used_by: str) -> Check:
    version = facts.deps.get(module)
    if version:
        return Check(label, OK, version, used_by=used_by)
    return Check(label, MISSING, f"cannot import {module} in gdb's Python {facts.python_version}",
                 fix_for(module), used_by)


def _optional_tabulate(facts: HostFacts) -> Check:
    """tabulate is no longer needed: common.table renders every table."""
    version = facts.deps.get("tabulate")
    if version:
        return Check("tabulate", OK, f"{version} (optional: tables do not need it)")
    return Check("tabulate", INFO, "not installed; optional: gdb_toolkit renders its tables itself")


def _ptrace(f: HostFacts) -> Check:
    used = "attach, plt-walk --live, stack-diagnose, vg-attach"
    if f.ptrace_scope == 3:
        return Check("ptrace", MISSING, "kernel.yama.ptrace_scope=3: attaching is disabled",
                     "reboot: scope 3 cannot be lowered at run time", used)
    if f.euid == 0 and f.cap_sys_ptrace is not False:
        return Check("ptrace", OK, "root (CAP_SYS_PTRACE)" if f.cap_sys_ptrace else "root",
                     used_by=used)
    if f.euid == 0 and f.ptrace_scope in (None, 0):     # root, but CAP_SYS_PTRACE dropped
        return Check("ptrace", LIMITED, "root without CAP_SYS_PTRACE (a container?): only "
                     "processes of the same user that are not more privileged can be attached",
                     "run gdb with CAP_SYS_PTRACE (docker run --cap-add=SYS_PTRACE)", used)
    if f.ptrace_scope in (1, 2):
        return Check("ptrace", LIMITED, f"kernel.yama.ptrace_scope={f.ptrace_scope}: "
                     "only children (run/start) can be debugged, not attach PID",
                     "sysctl kernel.yama.ptrace_scope=0, or run gdb as root", used)
    return Check("ptrace", OK, "same-user attach allowed"
                 + ("" if f.ptrace_scope is not None else " (no Yama)"), used_by=used)


def _kcore(f: HostFacts) -> Check:
    used = "kcore, kprobe-list, kprobe-show, kdis, kx, ktask"
    if f.kcore == "readable":
        return Check("/proc/kcore", OK, "readable", used_by=used)
    if f.kcore == "absent":
        return Check("/proc/kcore", MISSING, f"absent: kernel {f.kernel_release} built without "
                     "CONFIG_PROC_KCORE", "boot a kernel with CONFIG_PROC_KCORE=y "
                     "(Debian's linux-image-amd64 has it)", used)
    if f.lockdown and "[none]" not in f.lockdown:
        return Check("/proc/kcore", MISSING, f"{f.kcore}; kernel lockdown is {f.lockdown}",
                     "boot with lockdown=none (or disable Secure Boot lockdown)", used)
    return Check("/proc/kcore", MISSING, f.kcore, "run gdb as root (needs CAP_SYS_RAWIO)", used)


def _kallsyms(f: HostFacts) -> Check:
    used = "ksym, kprobe-list, ktrace --stack"
    if f.kallsyms == "visible":
        return Check("kallsyms addresses", OK, "visible", used_by=used)
    if f.kallsyms == "zeroed":
        return Check("kallsyms addresses", MISSING, "all zero (kernel.kptr_restrict hides them)",
                     "run as root, or sysctl kernel.kptr_restrict=0", used)
    return Check("kallsyms addresses", MISSING, "/proc/kallsyms absent",
                 "boot a kernel with CONFIG_KALLSYMS=y", used)


def _kprobes(f: HostFacts) -> Check:
    used = "kprobe-list, ktrace, stack-diagnose --kernel"
    if f.kernel_config_kprobes == "n":
        return Check("kprobes", MISSING, f"kernel {f.kernel_release} has no CONFIG_KPROBES",
                     "boot a kernel with CONFIG_KPROBES=y (Debian's linux-image-amd64)", used)
    if f.kprobe_events or f.kprobe_pmu:
        how = ", ".join(w for w, ok in (("tracefs kprobe_events", f.kprobe_events),
                                         ("perf kprobe PMU", f.kprobe_pmu)) if ok)
        extra = "" if f.kprobes_list else "; debugfs kprobes/list not readable (mount debugfs)"
        return Check("kprobes", OK if f.kprobes_list else LIMITED, how + extra,
                     "" if f.kprobes_list else "mount -t debugfs none /sys/kernel/debug", used)
    if f.tracefs is None and f.tracefs_mountable and f.kernel_config_kprobes == "y":
        return Check("kprobes", LIMITED, "tracefs not mounted",
                     "mount -t tracefs nodev /sys/kernel/tracing", used)
    return Check("kprobes", MISSING, f"no kprobe_events in tracefs and no kprobe PMU "
                 f"(CONFIG_KPROBES={f.kernel_config_kprobes or 'unknown'}, "
                 f"tracefs {'at ' + f.tracefs if f.tracefs else 'not mounted'})",
                 "boot a kernel with CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y", used)


def headers_fix(release: str) -> str:
    """How to get kernel headers for *release*, as ktrace would say it: a Debian
    package only exists for Debian's kernels; any Debian headers tree will do."""
    from gdb_toolkit.ktrace.kheaders import missing_error

    return missing_error(release).fix or ""


def _bcc(f: HostFacts) -> list[Check]:
    used = "ktrace fentry (kfunc) programs; ktrace's other programs need no bcc"
    if not f.deps.get("bcc"):
        return [Check("bcc", MISSING, "python3 cannot import bcc", "apt-get install python3-bpfcc", used)]
    checks = [Check("bcc", OK, f"{f.deps['bcc']} (in /usr/bin/python3, not in gdb)", used_by=used)]
    if f.bcc_compile is None:
        checks.append(Check("bcc compile", OK, "a test BPF program compiled", used_by=used))
    elif f.bcc_compile.startswith("not checked"):
        checks.append(Check("bcc compile", INFO, f.bcc_compile, "run toolkit doctor without --quick", used))
    else:
        fix = (headers_fix(f.kernel_release) if not f.kernel_headers
               else "see the error; bcc needs clang/llvm from python3-bpfcc")
        checks.append(Check("bcc compile", MISSING, f.bcc_compile, fix, used))
    return checks


def _headers(f: HostFacts) -> Check:
    used = "ktrace fentry (kfunc) programs (bcc compiles them against the headers)"
    if not f.kernel_headers:
        return Check("kernel headers", MISSING, f"none for kernel {f.kernel_release}",
                     headers_fix(f.kernel_release), used)
    detail = f.kernel_headers + (f" ({f.kernel_headers_note})" if f.kernel_headers_note else "")
    return Check("kernel headers", OK, detail, used_by=used)


def evaluate(f: HostFacts) -> DoctorReport:
    c = [
        Check("gdb", OK if f.gdb_version else INFO, f.gdb_version or "not running inside gdb"),
        Check("python (gdb's)", OK, f"{f.python_version} at {f.python_executable}"),
        # plt has its own ELF reader: pyelftools serves only the kernel commands' ELF inputs
        _dep(f, "elftools", "pyelftools", "kernel commands' --vmlinux, --system-map VMLINUX, "
             "--btf ELF"),
        _dep(f, "capstone", "capstone", "plt, kdis, kprobe-show, stack-diagnose"),
        _optional_tabulate(f),
        _ptrace(f),
        _kcore(f),
        _kallsyms(f),
        Check("BTF", OK if f.btf else MISSING,
              "/sys/kernel/btf/vmlinux" if f.btf else "no /sys/kernel/btf/vmlinux",
              "" if f.btf else "boot a kernel with CONFIG_DEBUG_INFO_BTF=y", "kprobe-show, ktask, ktypes"),
        _kprobes(f),
        Check("valgrind", OK if f.valgrind else MISSING, f.valgrind or "not on PATH",
              "" if f.valgrind else "apt-get install valgrind", "vg-start, vg-leaks"),
        Check("vgdb", OK if f.vgdb else MISSING, f.vgdb or "not on PATH",
              "" if f.vgdb else "apt-get install valgrind", "vg-start, vg-attach"),
        *_bcc(f),
        _headers(f),
        Check("root", OK if f.euid == 0 else LIMITED, f"euid {f.euid}",
              "" if f.euid == 0 else "run gdb with sudo for kernel commands",
              "kcore, kprobe-*, ktrace"),
    ]
    return DoctorReport(c)
