import os

import pytest

from gdb_toolkit.doctor import checks
from gdb_toolkit.doctor.host_facts import HostFacts, probe_kallsyms, probe_kcore


def facts(**kw) -> HostFacts:
    base = dict(gdb_version="13.1", python_version="3.11.2", python_executable="/usr/bin/python",
                deps={"elftools": "0.29", "capstone": "4.0.2", "tabulate": "0.8.9", "bcc": "0.26.0"},
                euid=0, ptrace_scope=None, kcore="readable", kallsyms="visible", btf=True,
                tracefs="/sys/kernel/tracing", tracefs_mountable=True, kprobe_events=True,
                kprobe_pmu=True, kprobes_list=True, kernel_config_kprobes="y", lockdown=None,
                valgrind="3.19.0", vgdb="/usr/bin/vgdb", bcc_compile=None,
                kernel_release="6.1.0-18-amd64", kernel_headers="/lib/modules/6.1.0-18-amd64/build")
    base.update(kw)
    return HostFacts(**base)


def by_name(report):
    return {c.name: c for c in report.checks}


def test_everything_available():
    r = checks.evaluate(facts())
    assert not r.missing, r.missing


def test_missing_kcore_and_kprobes_say_why_and_fix():
    r = by_name(checks.evaluate(facts(kcore="absent", kernel_config_kprobes="n",
                                      kprobe_events=False, kprobe_pmu=False)))
    assert r["/proc/kcore"].state == "missing"
    assert "CONFIG_PROC_KCORE" in r["/proc/kcore"].detail and r["/proc/kcore"].fix
    assert r["kprobes"].state == "missing" and "CONFIG_KPROBES" in r["kprobes"].detail


def test_non_root_and_restricted():
    r = by_name(checks.evaluate(facts(euid=1000, ptrace_scope=1, kallsyms="zeroed",
                                      kcore="denied: Permission denied")))
    assert r["ptrace"].state == "limited" and "ptrace_scope" in r["ptrace"].fix
    assert r["kallsyms addresses"].state == "missing" and "kptr_restrict" in r["kallsyms addresses"].detail
    assert "root" in r["/proc/kcore"].fix
    assert r["root"].state == "limited"


def test_tracefs_unmounted_is_limited():
    r = by_name(checks.evaluate(facts(tracefs=None, kprobe_events=False, kprobe_pmu=False)))
    assert r["kprobes"].state == "limited" and "mount -t tracefs" in r["kprobes"].fix


def test_missing_deps_and_bcc_headers():
    r = by_name(checks.evaluate(facts(deps={"elftools": None, "capstone": "4", "tabulate": "1",
                                            "bcc": "0.26"}, bcc_compile="Failed to compile",
                                      kernel_headers=None)))
    assert r["pyelftools"].state == "missing" and "python3-pyelftools" in r["pyelftools"].fix
    assert r["bcc compile"].state == "missing" and "linux-headers-6.1.0-18-amd64" in r["bcc compile"].fix


def test_probes_on_files(tmp_path):
    assert probe_kcore(str(tmp_path / "nope")) == "absent"
    core = tmp_path / "kcore"
    core.write_bytes(b"\x7fELF" + b"\0" * 60)
    assert probe_kcore(str(core)) == "readable"
    ks = tmp_path / "kallsyms"
    ks.write_text("0000000000000000 T _text\n0000000000000000 T foo\n")
    assert probe_kallsyms(str(ks)) == "zeroed"
    ks.write_text("ffffffff81000000 T _text\n")
    assert probe_kallsyms(str(ks)) == "visible"


def test_headers_of_another_kernel_are_usable_and_said():
    r = by_name(checks.evaluate(facts(kernel_headers="/usr/src/linux-headers-6.1.0-56-common",
                                      kernel_headers_note="no headers for the running kernel 6.18")))
    assert r["kernel headers"].state == "ok"
    assert "no headers for the running kernel 6.18" in r["kernel headers"].detail
    r = by_name(checks.evaluate(facts(kernel_headers=None)))
    assert r["kernel headers"].state == "missing" and r["kernel headers"].fix


def test_ptrace_row_believes_capeff_not_euid(tmp_path):
    from gdb_toolkit.doctor.host_facts import probe_capability

    status = tmp_path / "status"
    status.write_text("Name:\tgdb\nCapEff:\t000001fffef7ffff\n")     # bit 19 (CAP_SYS_PTRACE) clear
    assert probe_capability(19, str(status)) is False
    status.write_text("CapEff:\t0000000000080000\n")
    assert probe_capability(19, str(status)) is True
    # root in a container without CAP_SYS_PTRACE: not "root (CAP_SYS_PTRACE)"
    row = by_name(checks.evaluate(facts(euid=0, cap_sys_ptrace=False)))["ptrace"]
    assert row.state == "limited" and "CAP_SYS_PTRACE" in row.fix and "without" in row.detail
    assert by_name(checks.evaluate(facts(euid=0, cap_sys_ptrace=True)))["ptrace"].state == "ok"
    # an ordinary user never has CAP_SYS_PTRACE: same-user attach is still fine with scope 0
    assert by_name(checks.evaluate(facts(euid=1000, ptrace_scope=0, cap_sys_ptrace=False)))["ptrace"].state == "ok"


def test_kernel_headers_fix_names_a_package_only_for_debian_kernels():
    deb = by_name(checks.evaluate(facts(kernel_release="6.1.0-18-amd64", kernel_headers=None,
                                        bcc_compile="Exception: Failed to compile BPF module")))
    assert deb["kernel headers"].fix == "apt-get install linux-headers-6.1.0-18-amd64"
    assert deb["bcc compile"].fix == "apt-get install linux-headers-6.1.0-18-amd64"
    # a custom kernel (like this VM's 6.18.44-fc-v657) has no Debian headers package
    custom = by_name(checks.evaluate(facts(kernel_release="6.18.44-fc-v657", kernel_headers=None,
                                           bcc_compile="Exception: Failed to compile BPF module")))
    for row in ("kernel headers", "bcc compile"):
        assert "apt-get install linux-headers-6.18.44" not in custom[row].fix
        assert "/lib/modules/6.18.44-fc-v657/build" in custom[row].fix


def test_source_version_reads_what_import_would_say(tmp_path, monkeypatch):
    """The doctor names tabulate's version without importing it (common.deps.source_version):
    a single-file module's __version__, a package's setuptools_scm version.py; anything else
    falls back to importing it."""
    import importlib
    import sys

    from gdb_toolkit.common import deps

    (tmp_path / "gtk_single.py").write_text('"""doc"""\n__version__ = "0.8.9"\n')
    pkg = tmp_path / "gtk_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .version import version as __version__\n")
    (pkg / "version.py").write_bytes(b"__version__: str\r\n__version__ = version = '0.9.0'\r\n"
                                     b"__version_tuple__ = version_tuple = (0, 9, 0)\r\n")  # 0.9.0's wheel
    (tmp_path / "gtk_computed.py").write_text("__version__ = '.'.join(['1', '2'])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert deps.source_version("gtk_single") == "0.8.9"
    assert deps.source_version("gtk_pkg") == "0.9.0"
    assert deps.source_version("gtk_computed") is None
    assert deps.source_version("gtk_missing_module") is None
    assert not {"gtk_single", "gtk_pkg", "gtk_computed"} & set(sys.modules)
    import tabulate                                   # the real one (python3-tabulate)
    assert deps.version_of("tabulate") == tabulate.__version__


def test_read_gzip_text_is_gzip_open(tmp_path):
    """host_facts.read_gzip_text (no gzip import: ~1.5 ms of the doctor's first call) reads
    /proc/config.gz as gzip.open(path, "rt").read() does, None where gzip raises OSError."""
    import gzip

    from gdb_toolkit.doctor.host_facts import read_gzip_text

    config = "CONFIG_KPROBES=y\n# CONFIG_X is not set\r\nCONFIG_Y=\"a\rb\"\n" * 200
    one = gzip.compress(config.encode())
    files = {"one": one, "two members": one + gzip.compress(b"CONFIG_Z=m\n"),
             "padded": one + b"\0" * 7 + gzip.compress(b"CONFIG_Z=m\n"), "empty": b"",
             "not gzip": b"CONFIG_KPROBES=y\n", "bad crc": one[:-8] + b"\0" * 8,
             "trailing junk": one + b"junk here"}
    for name, data in files.items():
        path = tmp_path / name.replace(" ", "_")
        path.write_bytes(data)
        try:
            with gzip.open(path, "rt") as f:
                expected = f.read()
        except OSError:
            expected = None
        assert read_gzip_text(str(path)) == expected, name
    (tmp_path / "truncated").write_bytes(one[:-20])
    with pytest.raises(EOFError):
        gzip.open(tmp_path / "truncated", "rt").read()
    with pytest.raises(EOFError):
        read_gzip_text(str(tmp_path / "truncated"))
    assert read_gzip_text(str(tmp_path / "missing")) is None


def test_kheaders_glob_star_is_glob(tmp_path):
    """kheaders._glob_star (no glob/fnmatch import) lists what glob.glob lists, in its order."""
    import glob

    from gdb_toolkit.ktrace.kheaders import _glob_star

    for name in ("linux-headers-6.1.0-13-common", "linux-headers-6.1.0-13-amd64", "linux-headers-",
                 "linux-headers--common", "linux-headers-common", ".linux-headers-x", "linux-headers-x",
                 "other", "linux-headers-6.1.0-13-cloud-amd64", "xlinux-headers-1"):
        (tmp_path / name).mkdir()
    (tmp_path / "linux-headers-file-common").write_text("")
    for prefix, suffix in (("linux-headers-", ""), ("linux-headers-", "-common"),
                           ("linux-headers-6.1.0-13-", ""), ("nothing-", "")):
        assert _glob_star(str(tmp_path), prefix, suffix) == glob.glob(
            os.path.join(str(tmp_path), prefix + "*" + suffix)), (prefix, suffix)
    assert _glob_star(str(tmp_path / "missing"), "linux-headers-") == []


def test_doctor_looks_for_tracefs_where_the_kernel_commands_do():
    # host_facts spells the directories itself (no kernel package on the doctor's first call)
    from gdb_toolkit.doctor.host_facts import TRACEFS_DIRS
    from gdb_toolkit.kernel.kprobe_text import TRACEFS_DIRS as KERNEL_TRACEFS_DIRS

    assert TRACEFS_DIRS == KERNEL_TRACEFS_DIRS
