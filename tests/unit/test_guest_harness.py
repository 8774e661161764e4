"""Pure parts of the guest harness: version choice, console markers, result mapping, scripts."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.guest.initramfs import MODULES, init_script
from tests.guest.kernel import GuestError, choose_version, parse_depends, version_key
from tests.guest.results import outcomes, parse_lines, result_key, skip_reason
from tests.guest.kernel import Kernel
from tests.guest.vm import (command_script, guest_env, held_back, parse_console, plan_accels,
                             qemu_argv, requested_accel, run_env, visible_in_guest)

NONCE = "0123456789abcdef"


# ---------------------------------------------------------------- version selection

def test_parse_depends_reads_apt_cache_output():
    text = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n"
    assert parse_depends(text) == ["6.1.0-56-amd64"]


def test_parse_depends_alternatives_unsigned_and_noise():
    text = ("linux-image-amd64\n |Depends: linux-image-6.1.0-9-amd64-unsigned\n"
            "  Depends: linux-image-6.1.0-10-amd64\n  Recommends: firmware-linux-free\n"
            "  Depends: linux-image-6.1.0-10-amd64\n")
    assert parse_depends(text) == ["6.1.0-9-amd64", "6.1.0-10-amd64"]


@pytest.mark.parametrize("text", ["", "E: No packages found\n", "Depends: linux-base\n",
                                  "  Depends: linux-image-cloud-amd64\n"])
def test_parse_depends_nothing(text):
    assert parse_depends(text) == []


def test_version_key_is_numeric_not_lexical():
    assert version_key("6.1.0-10-amd64") > version_key("6.1.0-9-amd64")
    assert version_key("garbage") < version_key("6.1.0-1-amd64")


def test_choose_version_priority():
    apt, cached = ["6.1.0-56-amd64"], ["6.1.0-55-amd64", "6.1.0-9-amd64"]
    assert choose_version(apt, cached, "6.1.0-1-amd64") == "6.1.0-1-amd64"   # explicit override
    assert choose_version(apt, cached) == "6.1.0-56-amd64"                    # apt's current one
    assert choose_version([], cached) == "6.1.0-55-amd64"                     # offline: newest cached
    assert choose_version([], []) is None


def test_parse_depends_on_this_hosts_apt():
    proc = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True,
                          text=True)
    if proc.returncode != 0 or "Depends: linux-image-" not in proc.stdout:
        pytest.skip("apt has no linux-image-amd64 here")
    oracle = [l.split("linux-image-", 1)[1].strip() for l in proc.stdout.splitlines()
              if "Depends: linux-image-" in l]
    assert parse_depends(proc.stdout) == oracle


# ---------------------------------------------------------------- console markers

def _console(body: str, status: int | None = 0, nonce: str = NONCE) -> str:
    text = "[    0.1] boot noise\r\n@@GTK-GUEST-BEGIN " + nonce + "@@\r\n" + body
    if status is not None:
        text += f"@@GTK-GUEST-EXIT {nonce} {status}@@\r\n[    4.0] reboot: Power down\r\n"
    return text


def test_parse_console_status_and_output():
    p = parse_console(_console("hello\r\nworld\r\n", 3), NONCE)
    assert p == {"begun": True, "status": 3, "output": "hello\nworld\n", "fail": None}


def test_parse_console_output_without_trailing_newline():
    p = parse_console(_console("no newline", 0), NONCE)
    assert p["output"] == "no newline" and p["status"] == 0


def test_parse_console_ignores_markers_with_another_nonce():
    body = "@@GTK-GUEST-EXIT ffffffffffffffff 0@@\r\nstill running\r\n"
    p = parse_console(_console(body, None), NONCE)
    assert p["status"] is None and "still running" in p["output"]
    assert parse_console(_console("x\n", 0), "fedcba9876543210")["begun"] is False


def test_parse_console_boot_failure():
    text = "[ 1.0] oops\r\n@@GTK-GUEST-FAIL mount of the host root (9p) failed@@\r\n"
    p = parse_console(text, NONCE)
    assert p["status"] is None and not p["begun"]
    assert p["fail"] == "mount of the host root (9p) failed"


def test_parse_console_nothing():
    assert parse_console("", NONCE) == {"begun": False, "status": None, "output": "", "fail": None}


@pytest.mark.parametrize("cut", range(0, 40))
def test_held_back_never_streams_a_partial_marker(cut):
    marker = f"@@GTK-GUEST-EXIT {NONCE} 12@@"
    buf = "output line\n" + marker[:cut]
    p = held_back(buf, f"@@GTK-GUEST-EXIT {NONCE} ")
    assert buf[:p] == "output line\n" or (cut == 0 and p == len(buf))


def test_held_back_lets_ordinary_at_signs_through():
    prefix = f"@@GTK-GUEST-EXIT {NONCE} "
    assert held_back("mail me@example.com\n", prefix) == len("mail me@example.com\n")
    assert held_back("x@@", prefix) == 1


# ---------------------------------------------------------------- command script and qemu

def test_command_script_runs_with_exact_env_and_cwd(tmp_path):
    weird = tmp_path / "dir with 'quotes' $x"
    weird.mkdir()
    env = {"PATH": "/usr/bin:/bin", "ODD": "a b'c\"$HOME", "HOME": str(tmp_path / "h")}
    proc = subprocess.run(["/bin/sh", "-c", command_script(["/usr/bin/env", "-0"], str(weird), env)],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert dict(kv.split("=", 1) for kv in proc.stdout.split("\0") if kv) == env
    assert (tmp_path / "h").is_dir()                      # HOME is created
    proc = subprocess.run(["/bin/sh", "-c", command_script(["/bin/sh", "-c", "pwd; exit 4"],
                                                            str(weird), env)],
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stdout.strip()) == (4, str(weird))


def test_command_script_missing_cwd_falls_back_to_root():
    script = command_script(["/bin/pwd"], "/nonexistent/gtk", {"PATH": "/bin"})
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
    assert proc.stdout.strip() == "/"


def test_guest_env_marks_the_guest_and_avoids_writes_to_root():
    env = guest_env({"EXTRA": "1"})
    assert env["GDB_TOOLKIT_IN_GUEST"] == "1" and env["EXTRA"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    for k in ("HOME", "TMPDIR", "XDG_CACHE_HOME"):
        assert env[k].startswith("/tmp")


def _shares(argv):
    """mount_tag -> the -fsdev options behind its virtio-9p-pci device."""
    fsdevs = {}
    for i, a in enumerate(argv):
        if a == "-fsdev":
            opts = argv[i + 1]
            fsdevs[opts.split("id=")[1].split(",")[0]] = opts
    shares = {}
    for i, a in enumerate(argv):
        if a == "-device" and argv[i + 1].startswith("virtio-9p-pci,"):
            d = dict(kv.split("=", 1) for kv in argv[i + 1].split(",")[1:])
            shares[d["mount_tag"]] = fsdevs[d["fsdev"]]
    return shares


def test_qemu_argv_shares_root_readonly_and_accel(tmp_path):
    argv = qemu_argv(tmp_path / "vmlinuz", tmp_path / "initrd", tmp_path / "x", tmp_path / "r",
                     "tcg")
    fs = _shares(argv)
    assert "path=/," in fs["host"] and fs["host"].endswith("readonly=on")
    assert f"path={tmp_path / 'x'}," in fs["xfer"] and "readonly" not in fs["xfer"]
    assert f"path={tmp_path / 'r'}," in fs["repo"] and fs["repo"].endswith("readonly=on")
    assert argv[0] == "qemu-system-x86_64"
    assert "-no-reboot" in argv and "console=ttyS0" in argv[argv.index("-append") + 1]
    assert argv[argv.index("-accel") + 1].startswith("tcg")
    kvm = qemu_argv(tmp_path / "v", tmp_path / "i", tmp_path / "x", None, "kvm")
    assert argv[argv.index("-accel") + 1].startswith("tcg")
    assert kvm[kvm.index("-accel") + 1] == "kvm" and set(_shares(kvm)) == {"host", "xfer"}


def test_qemu_argv_arm64_virt_board_own_root_and_pl011_console(tmp_path):
    from tests.guest.arch import ARM64
    argv = qemu_argv(tmp_path / "Image", tmp_path / "initrd", tmp_path / "x", tmp_path / "r",
                     "tcg", arch=ARM64, root=tmp_path / "root")
    assert argv[0] == "qemu-system-aarch64"
    assert argv[argv.index("-M") + 1] == "virt"
    assert argv[argv.index("-cpu") + 1] == "max,pauth-impdef=on"   # plain max boots 2-3x slower
    assert "console=ttyAMA0" in argv[argv.index("-append") + 1]
    fs = _shares(argv)
    assert f"path={tmp_path / 'root'}," in fs["host"] and fs["host"].endswith("readonly=on")
    # another architecture never tries KVM, whatever was asked
    assert plan_accels("auto", True, None, kvm_possible=False) == ["tcg"]
    assert plan_accels("kvm", True, "good", kvm_possible=False) == ["tcg"]


def test_init_script_loads_every_module_and_is_valid_sh(tmp_path):
    text = init_script()
    assert "@" + "MODULES@" not in text and " ".join(MODULES) in text
    script = tmp_path / "init"
    script.write_text(text)
    assert subprocess.run(["/bin/sh", "-n", str(script)]).returncode == 0


# ---------------------------------------------------------------- result mapping

def _row(key, when, outcome, **kw):
    return dict(key=key, when=when, outcome=outcome, **kw)


def test_outcomes_map_every_case():
    rows = [
        _row("a", "setup", "passed"), _row("a", "call", "passed"), _row("a", "teardown", "passed"),
        _row("b", "setup", "passed"), _row("b", "call", "failed", longrepr="assert 1 == 2",
                                           stdout="printed"),
        _row("b", "teardown", "passed"),
        _row("c", "setup", "skipped", longrepr=["f.py", "3", "Skipped: no bcc"]),
        _row("c", "teardown", "passed"),
        _row("d", "setup", "failed", longrepr="fixture broke"),
        _row("e", "setup", "passed"), _row("e", "call", "passed"),
        _row("e", "teardown", "failed", longrepr="cleanup failed"),
        _row("f", "setup", "passed"), _row("f", "call", "skipped", wasxfail="known bug",
                                           longrepr=["f.py", "9", "known bug"]),
        _row("g", "setup", "passed"),
    ]
    got = outcomes(rows)
    assert got["a"].outcome == "passed"
    assert got["b"].outcome == "failed" and "assert 1 == 2" in got["b"].text \
        and "printed" in got["b"].text
    assert (got["c"].outcome, got["c"].text) == ("skipped", "no bcc")
    assert got["d"].outcome == "failed" and "error in setup" in got["d"].text
    assert got["e"].outcome == "failed" and "error in teardown" in got["e"].text
    assert (got["f"].outcome, got["f"].text) == ("xfailed", "known bug")
    assert got["g"].outcome == "missing"


def test_parse_lines_survives_a_torn_last_line():
    rows = parse_lines('{"key": "a", "when": "call", "outcome": "passed"}\n{"key": "b", "wh')
    assert rows == [{"key": "a", "when": "call", "outcome": "passed"}]


def test_result_key_and_skip_reason():
    assert result_key("/r/tests/t.py", "tests/t.py::C::f[1]") == "/r/tests/t.py::C::f[1]"
    assert skip_reason(("x", 1, "Skipped: why")) == "why"
    assert skip_reason("plain") == "plain"


# ---------------------------------------------------------------- accelerator choice

def test_plan_accels():
    assert plan_accels("tcg", True, None) == ["tcg"]
    assert plan_accels("kvm", False, "bad") == ["kvm"]              # explicit: no second guess
    assert plan_accels("auto", True, None) == ["kvm", "tcg"]        # untested KVM: try, fall back
    assert plan_accels("auto", True, "good") == ["kvm", "tcg"]
    assert plan_accels("auto", True, "bad") == ["tcg"]              # seen to hang here before
    assert plan_accels("auto", False, "good") == ["tcg"]            # no usable /dev/kvm


def test_requested_accel(monkeypatch):
    monkeypatch.delenv("GDB_TOOLKIT_GUEST_ACCEL", raising=False)
    assert requested_accel() == "auto"
    monkeypatch.setenv("GDB_TOOLKIT_GUEST_ACCEL", "TCG")
    assert requested_accel() == "tcg"
    assert requested_accel("kvm") == "kvm"
    with pytest.raises(GuestError, match="use one of"):
        requested_accel("hvf")


# ---------------------------------------------------------------- CLI without booting

def _cli(*args, **env):
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-m", "tests.guest", *args], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=60)


def test_cli_without_qemu_exits_125_with_the_reason():
    proc = _cli("run", "--", "true", PATH="/nonexistent")
    assert proc.returncode == 125
    assert proc.stderr.strip() == "guest: qemu-system-x86_64 not found: apt-get install qemu-system-x86"


def test_cli_needs_a_command():
    proc = _cli("run")
    assert proc.returncode == 2 and "give a command" in proc.stderr


def test_cli_rejects_unknown_accel():
    proc = _cli("run", "--accel", "hvf", "--", "true")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


# ---------------------------------------------------------------- run.env

def test_visible_in_guest():
    assert visible_in_guest("/var/cache/gdb_toolkit/guest/x")
    assert visible_in_guest("/tmpfoo/x")
    for hidden in ("/tmp", "/tmp/clone", "/run/x", "/var/tmp/y", "/proc/1"):
        assert not visible_in_guest(hidden)


def test_run_env_is_sourceable_and_quotes(tmp_path):
    k = Kernel("6.1.0-99-amd64", tmp_path / "tree")
    text = run_env("abc", tmp_path / "a dir; $(x)", k)
    proc = subprocess.run(["/bin/sh", "-c", text + 'printf "%s|%s|%s" "$GTK_NONCE" "$GTK_REPO" "$GTK_MODDIR"'],
                          capture_output=True, text=True)
    nonce, repo, moddir = proc.stdout.split("|")
    assert (nonce, repo) == ("abc", str(tmp_path / "a dir; $(x)"))
    assert moddir == ("" if not visible_in_guest(str(k.modules.resolve())) else str(k.modules))


def test_preparation_tools_have_a_time_limit():
    """apt-get against a stalled mirror must not hang CI: GuestError once the limit passes."""
    from tests.guest.kernel import _run
    with pytest.raises(GuestError, match="did not finish within 1 s"):
        _run(["sleep", "30"], timeout=1)
    assert _run(["true"]).returncode == 0


def test_cache_lock_wait_has_a_time_limit(tmp_path):
    """A run stuck while holding the cache lock must not hang the next one forever."""
    import fcntl
    from tests.guest.kernel import cache_lock
    with open(tmp_path / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path\n"
                "from tests.guest.kernel import cache_lock, GuestError\n"
                "try:\n    cache_lock(Path(sys.argv[2]), timeout=1).__enter__()\n"
                "except GuestError as e:\n    print('GuestError', e)\n")
        out = subprocess.run([sys.executable, "-c", code, REPO, str(tmp_path)], capture_output=True,
                             text=True, timeout=60).stdout
    assert out.startswith("GuestError another run held the guest cache lock"), out
    with cache_lock(tmp_path, timeout=1):      # free again: taken at once
        pass


def test_guest_that_never_powers_off_after_its_exit_marker_is_not_waited_for(tmp_path, monkeypatch):
    """The command reported its status, then qemu hangs (poweroff stuck): the run ends within
    the grace period with that status, instead of burning the whole (40 min) timeout."""
    import time
    from tests.guest import vm

    def fake_qemu(vmlinuz, initrd, xfer, repo, accel, **kw):
        return ["sh", "-c", f'. {xfer}/run.env; echo "@@GTK-GUEST-BEGIN $GTK_NONCE@@"; echo hello; '
                            'echo "@@GTK-GUEST-EXIT $GTK_NONCE 3@@"; exec sleep 600']
    monkeypatch.setattr(vm, "qemu_argv", fake_qemu)
    monkeypatch.setattr(vm, "EXIT_GRACE", 2.0)
    kernel = Kernel("6.1.0-0-amd64", tmp_path / "tree")
    t0 = time.monotonic()
    res = vm._boot_once(["true"], 120, 60, None, "/", None, "tcg", tmp_path, None, None,
                        lambda m: None, "1G", 1, kernel, tmp_path / "initrd")
    assert time.monotonic() - t0 < 30
    assert res.status == 3 and res.output.strip() == "hello" and res.error is None


# ---------------------------------------------------------------- the arm64 root

def test_parse_print_uris_reads_apt_output():
    from tests.guest.rootfs import parse_print_uris
    text = ("Reading package lists...\nThe following NEW packages will be installed:\n  gdb\n"
            "'http://deb.debian.org/debian/pool/main/g/gdb/gdb_13.1-3_arm64.deb' gdb_13.1-3_arm64.deb "
            "3786544 MD5Sum:0123\n"
            "'http://x/pool/libc6_2.36-9%2bdeb12u14_arm64.deb' libc6_2.36-9+deb12u14_arm64.deb 2324660 "
            "MD5Sum:96\n")
    debs = parse_print_uris(text)
    assert [(d.package, d.filename, d.size) for d in debs] == [
        ("gdb", "gdb_13.1-3_arm64.deb", 3786544), ("libc6", "libc6_2.36-9+deb12u14_arm64.deb", 2324660)]


def test_root_key_depends_on_versions_not_order():
    from tests.guest.rootfs import Deb, root_key
    a, b = Deb("u", "gdb_13.1-3_arm64.deb", 1), Deb("u", "libc6_2.36-9_arm64.deb", 2)
    assert root_key([a, b]) == root_key([b, a])
    assert root_key([a, b]) != root_key([a, Deb("u", "libc6_2.36-10_arm64.deb", 2)])


def test_parse_alternatives_literal_installs_only():
    from tests.guest.rootfs import best_alternatives, parse_alternatives
    gcc = ("#! /bin/sh\nset -e\n\nupdate-alternatives --quiet \\\n    --install /usr/bin/cc cc "
           "/usr/bin/gcc 20 \\\n    #--slave /usr/share/man/man1/cc.1.gz cc.1.gz x\n")
    procps = ('\tupdate-alternatives --install "$BINPATH"/"$BINNAME" "$BINNAME" \\\n'
              '\t    "$BINPATH"/"$BINNAME".procps 50 \\\n')
    mawk = "        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n  --slave a b c\n"
    other = "update-alternatives --install /usr/bin/awk awk /usr/bin/gawk 10\n"
    entries = parse_alternatives(gcc) + parse_alternatives(procps) + parse_alternatives(mawk)
    assert entries == [("/usr/bin/cc", "cc", "/usr/bin/gcc", 20),
                       ("/usr/bin/awk", "awk", "/usr/bin/mawk", 5)]
    best = best_alternatives(entries + parse_alternatives(other))
    assert best == {"cc": ("/usr/bin/cc", "/usr/bin/gcc"), "awk": ("/usr/bin/awk", "/usr/bin/gawk")}


def test_parse_depends_arm64():
    from tests.guest.arch import ARM64
    text = "linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-57-arm64:arm64\n"
    assert parse_depends(text, ARM64) == ["6.1.0-57-arm64"]
    assert parse_depends(text) == []          # not an amd64 kernel


def test_skipped_arches():
    from tests.guest.pytest_bridge import skipped_arches
    assert skipped_arches(None) == set() and skipped_arches("0") == set()
    assert skipped_arches("1") == {"x86_64", "arm64", "x86_64-new"}
    assert skipped_arches("arm64") == {"arm64"} and skipped_arches("amd64,aarch64") == {"x86_64", "arm64"}
    assert skipped_arches("x86_64-new") == {"x86_64-new"} and skipped_arches("new") == {"x86_64-new"}


# ---------------------------------------------------------------- the newer kernel (x86_64-new)

def test_backports_kernel_versions_parse_and_sort():
    """bookworm-backports names its kernels like Debian 13 (6.12.95+deb12-amd64), not with the
    6.1.0-N ABI number: apt-cache's text as it reads there, and a numeric order across both."""
    text = "linux-image-amd64\n  Depends: linux-image-6.12.95+deb12-amd64\n"
    assert parse_depends(text) == ["6.12.95+deb12-amd64"]
    order = ["garbage", "6.1.0-9-amd64", "6.1.0-57-amd64", "6.12.9+deb12-amd64",
             "6.12.95+deb12-amd64", "6.12.95+deb13-amd64", "6.13.1+deb12-amd64"]
    assert sorted(reversed(order), key=version_key) == order


def test_cached_versions_keep_each_suite_apart(tmp_path):
    """An offline run falls back to the newest cached kernel of ITS suite: the 6.1 guest never
    boots the backports kernel because it is newer, nor the reverse."""
    from tests.guest.kernel import SUITE_FILE, cached_versions
    for version, suite in (("6.1.0-57-amd64", None), ("6.12.95+deb12-amd64", "bookworm-backports"),
                           ("6.1.0-58-amd64", None)):
        boot = tmp_path / version / "tree" / "boot"
        boot.mkdir(parents=True)
        (boot / f"vmlinuz-{version}").write_bytes(b"x")
        if suite:
            (tmp_path / version / SUITE_FILE).write_text(suite + "\n")
    (tmp_path / "6.2.0-1-amd64").mkdir()            # no tree: not a cached kernel
    assert cached_versions(tmp_path) == ["6.1.0-57-amd64", "6.1.0-58-amd64"]
    assert cached_versions(tmp_path, "bookworm-backports") == ["6.12.95+deb12-amd64"]


def test_private_apt_state_leaves_the_hosts_sources_alone(tmp_path):
    from tests.guest.kernel import private_apt
    opts = private_apt("bookworm-backports", tmp_path)
    d = tmp_path / "apt-bookworm-backports"
    assert (d / "sources.list").read_text() == (
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://deb.debian.org/debian bookworm-backports main\n")
    pairs = dict(o.split("=", 1) for o in opts if o != "-o")
    assert pairs == {"Dir::Etc::sourcelist": str(d / "sources.list"), "Dir::Etc::sourceparts": "-",
                     "Dir::State::Lists": str(d / "lists"), "Dir::Cache": str(d / "cache"),
                     "APT::Sandbox::User": "root"}
    assert (d / "lists" / "partial").is_dir() and (d / "cache" / "archives" / "partial").is_dir()


def test_newer_kernel_that_cannot_be_fetched_is_a_guest_error_with_cause_and_fix(tmp_path,
                                                                                 monkeypatch):
    """No network, nothing cached: preparation fails (so every guest_newkernel test fails with
    the reason) and says what was tried and what is needed."""
    from tests.guest import kernel as k
    from tests.guest.arch import X86_64_NEW

    def offline(argv, timeout=None, **kw):
        if "update" in argv:
            return subprocess.CompletedProcess(argv, 100, "Err:1 http://deb.debian.org/debian "
                                               "bookworm-backports InRelease\n",
                                               "W: Failed to fetch ... Temporary failure resolving")
        return subprocess.CompletedProcess(argv, 0, "", "")
    monkeypatch.setenv("GDB_TOOLKIT_GUEST_CACHE", str(tmp_path))
    monkeypatch.delenv("GDB_TOOLKIT_GUEST_NEW_KERNEL", raising=False)
    monkeypatch.setattr(k, "_run", offline)
    with pytest.raises(GuestError) as exc:
        k.prepare_kernel(log=lambda m: None, arch=X86_64_NEW)
    text = str(exc.value)
    assert "bookworm-backports" in text and "deb.debian.org" in text and "Temporary failure" in text


def test_suite_versions_on_this_hosts_private_backports_lists():
    """What the private apt state names, against apt-cache's own text (skips when this machine
    never fetched the lists: the guest run does that)."""
    from tests.guest.arch import X86_64_NEW
    from tests.guest.kernel import cache_root, private_apt
    lists = cache_root() / "apt-bookworm-backports" / "lists"
    if not any(lists.glob("*backports*Packages*")):
        pytest.skip(f"no bookworm-backports lists in {lists} (fetched by the x86_64-new guest)")
    opts = private_apt("bookworm-backports", cache_root())
    proc = subprocess.run(["apt-cache", *opts, "depends", "linux-image-amd64"],
                          capture_output=True, text=True, check=True)
    oracle = [l.split("linux-image-", 1)[1].strip() for l in proc.stdout.splitlines()
              if "Depends: linux-image-" in l]
    assert oracle and parse_depends(proc.stdout, X86_64_NEW) == oracle
    assert all(version_key(v)[:2] >= (6, 4) for v in oracle), oracle


def _deb(tmp_path, name, files: dict, postinst: str | None = None, links: dict = None):
    """A minimal .deb built with dpkg-deb (the real tool), for the root assembly's fix-ups."""
    top = tmp_path / f"pkg-{name}"
    (top / "DEBIAN").mkdir(parents=True)
    (top / "DEBIAN" / "control").write_text(f"Package: {name}\nVersion: 1\nArchitecture: all\n"
                                            "Maintainer: t <t@t>\nDescription: t\n")
    if postinst:
        (top / "DEBIAN" / "postinst").write_text(postinst)
        (top / "DEBIAN" / "postinst").chmod(0o755)
    for rel, text in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text(text)
    for rel, target in (links or {}).items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, top / rel)
    out = tmp_path / f"{name}_1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(top), str(out)], check=True,
                   capture_output=True)
    return out


def test_root_fix_ups_alternatives_passwd_mtab(tmp_path):
    from tests.guest.rootfs import extract, fix_up
    debs = [
        _deb(tmp_path, "gcc", {"usr/bin/gcc-12": "#!/bin/sh\n"}, links={"usr/bin/gcc": "gcc-12"},
             postinst="#!/bin/sh\nupdate-alternatives --quiet \\\n  --install /usr/bin/cc cc /usr/bin/gcc 20 \\\n"
                      "  #--slave /x y z\n"),
        _deb(tmp_path, "base-passwd", {"usr/share/base-passwd/passwd.master": "root:*:0:0:root:/root:/bin/sh\n",
                                      "usr/share/base-passwd/group.master": "root:*:0:\n"}),
    ]
    root = tmp_path / "root"
    root.mkdir()
    extract(debs, root)
    fix_up(root, debs, "6.1.0-0-arm64", log=lambda m: None)
    assert os.readlink(root / "usr/bin/cc") == "/etc/alternatives/cc"
    assert os.readlink(root / "etc/alternatives/cc") == "/usr/bin/gcc"
    assert (root / "etc/passwd").read_text().startswith("root:")
    assert os.readlink(root / "etc/mtab") == "../proc/self/mounts"
    for d in ("proc", "sys", "dev", "tmp", "run", "var/tmp"):
        assert (root / d).is_dir()
    assert (root / ".gtk-root").read_text().split("\n")[1] == "6.1.0-0-arm64"


def test_root_fix_ups_refuse_a_directory_link_out_of_the_root(tmp_path):
    """A package whose directory is a symlink leading out of the root: nothing is written there."""
    from tests.guest.rootfs import extract, fix_up
    outside = tmp_path / "outside"
    outside.mkdir()
    debs = [_deb(tmp_path, "evil", {"usr/share/x": "x"}, links={"etc": str(outside)})]
    root = tmp_path / "root"
    root.mkdir()
    extract(debs, root)
    with pytest.raises(GuestError, match="leads out of the root"):
        fix_up(root, debs, "6.1.0-0-arm64", log=lambda m: None)
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------- console excerpt

def _lockup_console(repeats: int) -> str:
    """The shape CI saw: a soft lockup reported again every ~30 s until the timeout; with
    softlockup_panic the first report is followed by the panic and its backtraces."""
    head = ["@@GTK-GUEST-BEGIN 75111d0223fef69c@@", "." * 37]
    first = ["[  540.665076] watchdog: BUG: soft lockup - CPU#1 stuck for 45s! [python3:141]",
             "[  540.665080] CPU: 1 PID: 141 Comm: python3 Not tainted 6.1.0-57-amd64 #1",
             "[  540.665082] RIP: 0010:smp_call_function_many_cond+0x12e/0x3c0",
             "[  540.665090] Kernel panic - not syncing: softlockup: hung tasks"]
    again = [f"[ {568 + 30 * i}.664937] watchdog: BUG: soft lockup - CPU#1 stuck for {71 + 30 * i}s! "
             "[python3:141]" for i in range(repeats)]
    return "\r\n".join(head + first + again) + "\r\n"


def test_console_excerpt_shows_the_first_kernel_report_when_the_tail_repeats_it():
    from tests.guest.results import console_excerpt
    text = console_excerpt(_lockup_console(200), tail=40)
    assert "RIP: 0010:smp_call_function_many_cond+0x12e/0x3c0" in text    # the stuck place
    assert "Kernel panic - not syncing" in text
    assert text.index("kernel's first report") < text.index("(tail)")
    assert "[... 84 lines ...]" in text      # 206 lines: 2 + 80 shown, 84 left out, the last 40
    assert "\r" not in text
    assert text.rstrip().endswith("stuck for 6041s! [python3:141]")         # the last line


def test_console_excerpt_is_the_tail_when_the_report_is_in_it_or_absent():
    from tests.guest.results import console_excerpt
    short = console_excerpt(_lockup_console(3), tail=40)      # everything fits in the tail
    assert "first report" not in short and short.count("RIP: 0010") == 1
    quiet = console_excerpt("\n".join(f"line {i}" for i in range(100)), tail=5)
    assert quiet.splitlines() == ["----- guest console (tail) -----",
                                  "line 95", "line 96", "line 97", "line 98", "line 99"]


# ---------------------------------------------------------------- the hang watchdog

def test_x86_64_tcg_runs_its_vcpus_in_one_thread_and_the_env_can_say_otherwise(monkeypatch,
                                                                               tmp_path):
    """Debian's 6.1 kernel hangs in text_poke_bp under multi-threaded TCG (arch.py)."""
    from tests.guest.arch import ARM64, X86_64, X86_64_NEW
    monkeypatch.delenv("GDB_TOOLKIT_GUEST_TCG_THREADS", raising=False)
    assert X86_64.tcg_accel() == X86_64_NEW.tcg_accel() == "tcg,thread=single"
    assert ARM64.tcg_accel() == "tcg,thread=multi"
    argv = qemu_argv(tmp_path / "v", tmp_path / "i", tmp_path / "x", None, "tcg")
    assert argv[argv.index("-accel") + 1] == "tcg,thread=single"
    assert "unknown_nmi_panic" in X86_64.cmdline() and "unknown_nmi_panic" not in ARM64.cmdline()
    monkeypatch.setenv("GDB_TOOLKIT_GUEST_TCG_THREADS", "multi")
    assert X86_64.tcg_accel() == "tcg,thread=multi"
    monkeypatch.setenv("GDB_TOOLKIT_GUEST_TCG_THREADS", "many")
    with pytest.raises(ValueError, match="single or multi"):
        X86_64.tcg_accel()


def test_heartbeat_silence_counts_from_the_latest_sign_of_life(tmp_path):
    from tests.guest.vm import heartbeat_silence
    beat = tmp_path / "heartbeat"
    assert heartbeat_silence(beat, since=1000.0, busy_until=0.0, now=1250.0) == 250.0  # none yet
    beat.write_text("1\n")
    os.utime(beat, (1100.0, 1100.0))
    assert heartbeat_silence(beat, since=1000.0, busy_until=0.0, now=1250.0) == 150.0
    # the host's dump or gdbstub session halted the VM until 1200; still running: no silence
    assert heartbeat_silence(beat, since=1000.0, busy_until=1200.0, now=1250.0) == 50.0
    assert heartbeat_silence(beat, since=1000.0, busy_until=float("inf"), now=9e9) == 0.0


def test_stall_limit_reads_the_environment(monkeypatch):
    from tests.guest.vm import STALL_SECONDS, stall_limit
    monkeypatch.delenv("GDB_TOOLKIT_GUEST_STALL", raising=False)
    assert stall_limit() == STALL_SECONDS
    monkeypatch.setenv("GDB_TOOLKIT_GUEST_STALL", "0")
    assert stall_limit() == 0
    monkeypatch.setenv("GDB_TOOLKIT_GUEST_STALL", "soon")
    with pytest.raises(GuestError, match="give seconds"):
        stall_limit()


def test_init_script_beats_while_the_command_runs_and_stops_after():
    text = init_script()
    beat, run, stop = (text.index("/run/gtk/heartbeat"), text.index("cmd.sh"),
                       text.index("kill $beat"))
    assert beat < run < stop and "@BEAT@" not in text
