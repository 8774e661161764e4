"""The shared safety primitives of issue 11 (common/names, safe_open, private_dirs,
helper_process, gdb_quoting), checked against the operating system itself."""
import os
import random
import signal
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from gdb_toolkit.common import gdb_quoting, helper_process, names, private_dirs, safe_open
from gdb_toolkit.common.errors import ToolkitError

HOSTILE_NAMES = ["new\nline", "a b", "q'uote", 'd"q', "back\\slash", "semi;colon", "$(touch PWNED)",
                 "`id`", "-lead", "hash#x", "tab\there", "trail ", "~tilde", "uni\u00e9",
                 "lat\udce9in", "esc\x1b[2J", "cr\rx", "bidi\u202eevil", "star*"]


@contextmanager
def deadline(seconds: float):
    """Fail (instead of hanging the suite) if the block blocks."""
    def boom(*_):
        raise TimeoutError(f"blocked for more than {seconds}s")
    old = signal.signal(signal.SIGALRM, boom)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- names ------------------------------------------------------------------------------

def test_names_round_trip_any_bytes():
    rng = random.Random(11)
    samples = [bytes(range(256)), b"", b"\\", b"\\x41", b"caf\xe9", "café".encode(), b"\xff\xfe\n\x00"]
    samples += [bytes(rng.randrange(256) for _ in range(rng.randrange(40))) for _ in range(2000)]
    for raw in samples:
        name = names.decode_name(raw)
        assert names.encode_name(name) == raw
        shown = names.escape_name(raw)
        assert shown.isprintable(), shown
        assert names.unescape_name(shown) == raw


def test_names_escape_examples():
    assert names.escape_name(b"caf\xe9") == "caf\\xe9"
    assert names.escape_name("café") == "café"                 # valid UTF-8 stays readable
    assert names.escape_name(b"a b'c\"d") == "a b'c\"d"
    assert names.escape_name(b"evil\x1b[2J") == "evil\\x1b[2J"  # no terminal escape reaches the screen
    assert names.escape_name("x\ny") == "x\\x0ay"
    assert names.escape_name("a\\b") == "a\\\\b"
    assert names.escape_name("r\u202el") == "r\\u202el"
    assert not names.needs_escaping("plain/name")
    assert names.needs_escaping(b"\xff")
    for bad in ("\\", "\\q", "\\x4", "\\u12"):
        with pytest.raises(ValueError):
            names.unescape_name(bad)


def test_unescape_proc_maps_path_matches_the_kernel(tmp_path):
    """The kernel writes a newline of a mapped file's name as \\012 in /proc/PID/maps."""
    import mmap
    p = tmp_path / "map\nped"
    p.write_bytes(b"x" * 4096)
    with open(p, "rb") as f, mmap.mmap(f.fileno(), 4096, prot=mmap.PROT_READ):
        maps = open("/proc/self/maps", "rb").read().decode("utf-8", "surrogateescape")
    line = next(ln for ln in maps.splitlines() if "map\\012ped" in ln)
    assert names.unescape_proc_maps_path(line.split(None, 5)[5]) == str(p)


# -- safe_open ------------------------------------------------------------------------------

def test_open_regular_refuses_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with deadline(5), pytest.raises(ToolkitError) as e:
        safe_open.open_regular(fifo, "--btf file")
    assert "FIFO" in str(e.value) and str(fifo) in str(e.value) and "\n" not in str(e.value)


def test_open_regular_refuses_fifo_swapped_in_after_stat(tmp_path, monkeypatch):
    """The fstat of the opened descriptor is what counts: a FIFO put in place after the stat
    is opened O_NONBLOCK (no writer needed) and refused."""
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(safe_open.os, "stat", lambda p, **kw: real_stat(__file__))
    with deadline(5), pytest.raises(ToolkitError, match="FIFO"):
        safe_open.open_regular(fifo)


@pytest.mark.parametrize("path,word", [("/dev/null", "character device"), ("/tmp", "directory")])
def test_open_regular_refuses_devices_and_dirs(path, word):
    with deadline(5), pytest.raises(ToolkitError, match=word):
        safe_open.open_regular(path)


def test_open_regular_nofollow_and_missing(tmp_path):
    target = tmp_path / "t"
    target.write_bytes(b"abc")
    link = tmp_path / "l"
    link.symlink_to(target)
    assert safe_open.read_regular(link) == b"abc"
    with pytest.raises(ToolkitError, match="symbolic link"):
        safe_open.open_regular(link, nofollow=True)
    with pytest.raises(ToolkitError, match="does not exist"):
        safe_open.open_regular(tmp_path / "nope")


def test_error_names_non_utf8_path_printably(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9\nx"
    os.mkfifo(raw)
    with deadline(5), pytest.raises(ToolkitError) as e:
        safe_open.open_regular(raw, "kcore")
    msg = str(e.value)
    assert "caf\\xe9\\x0ax" in msg and msg.isprintable()
    with pytest.raises(ToolkitError):
        safe_open.open_regular(os.fsdecode(raw), "kcore")     # the surrogateescape str works too


def test_read_range_bounds(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(bytes(range(100)))
    with safe_open.open_regular(p) as f:
        assert f.size == 100
        assert f.read_range(10, 5) == bytes(range(10, 15))
        assert f.read_range(100, 0) == b""
        for off, n in ((99, 2), (1 << 40, 1), (-1, 1), (0, 1 << 40), (0, -1)):
            with pytest.raises(ToolkitError, match="outside"):
                f.read_range(off, n)
        assert f.file.read(3) == b"\x00\x01\x02"


def test_read_all_limit_and_proc_files(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x" * 1000)
    assert len(safe_open.read_regular(p, limit=1000)) == 1000
    with pytest.raises(ToolkitError, match="larger than"):
        safe_open.read_regular(p, limit=999)
    status = safe_open.read_regular_text("/proc/self/status", limit=1 << 16)   # st_size is 0
    assert "Pid:" in status
    with pytest.raises(ToolkitError, match="more than"):
        safe_open.open_regular(p, max_size=10)


def test_size_refusals_say_sizes_as_every_report_does(tmp_path):
    """safe_open's refusals name sizes with the toolkit's one size formatter (render.human_size:
    B/KiB/.../PiB); its own copy said "999 bytes" and stopped at GiB ("2048.0 GiB" for 2 TiB).
    The sizes themselves come from the test (os.stat of the file it wrote)."""
    p = tmp_path / "f"
    p.write_bytes(b"x" * 3072)
    assert os.stat(p).st_size == 3072
    with pytest.raises(ToolkitError) as e:
        safe_open.read_regular(p, limit=999)
    assert "larger than the 999 B read here" in str(e.value)
    with pytest.raises(ToolkitError) as e:
        safe_open.open_regular(p, max_size=1000)
    assert "is 3.0 KiB, more than the 1000 B expected of it" in str(e.value)
    os.truncate(p, 3 << 40)                 # sparse: a 3 TiB file costs nothing
    with pytest.raises(ToolkitError) as e:
        safe_open.open_regular(p, max_size=2 << 40)
    assert "is 3.0 TiB, more than the 2.0 TiB expected of it" in str(e.value)


def test_read_all_when_the_size_from_fstat_is_stale(tmp_path):
    """A file read into one buffer of its fstat size still comes back whole (and bounded) when
    it grew or shrank after the fstat: the oracle is the file's bytes read by Python."""
    p = tmp_path / "f"
    data = bytes(range(256)) * 40
    p.write_bytes(data)
    for claimed in (1, 100, len(data) - 1, len(data), len(data) + 1, len(data) * 3):
        with safe_open.open_regular(p) as f:
            f.size = claimed                 # as if the file changed since fstat
            assert f.read_all(1 << 20) == p.read_bytes()
    with safe_open.open_regular(p) as f:
        f.size = len(data) - 10
        with pytest.raises(ToolkitError, match="larger than"):
            f.read_all(len(data) - 10)       # grew past the limit after fstat
    if os.path.exists("/sys/kernel/btf/vmlinux"):   # kernfs: a page per read call
        with open("/sys/kernel/btf/vmlinux", "rb") as f:
            assert safe_open.read_regular("/sys/kernel/btf/vmlinux", limit=256 << 20) == f.read()


def test_check_range():
    safe_open.check_range(0, 10, 10)
    with pytest.raises(ToolkitError):
        safe_open.check_range(5, 6, 10, ".plt")


# -- private dirs -----------------------------------------------------------------------------

def test_private_tmpdir_is_private_and_removed():
    with private_dirs.private_tmpdir() as d:
        st = os.lstat(d)
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()
        open(os.path.join(d, "x"), "w").close()
        os.symlink("/etc/passwd", os.path.join(d, "link"))
    assert not os.path.exists(d)
    assert os.path.exists("/etc/passwd")


TEMP_ROOT_PROBE = ("import json, os, sys\n"
                   "from gdb_toolkit.common import private_dirs\n"
                   "mine = private_dirs.temp_root()\n"
                   "d = private_dirs.make_private_dir('gtk-probe-')\n"
                   "st = os.lstat(d)\n"
                   "os.rmdir(d)\n"
                   "tempfile_before = 'tempfile' in sys.modules\n"
                   "import tempfile\n"
                   "t = tempfile.mkdtemp(prefix='gtk-probe-')\n"
                   "os.rmdir(t)\n"
                   "print(json.dumps([mine, tempfile.gettempdir(), os.path.dirname(d), oct(st.st_mode),"
                   " os.path.basename(d)[len('gtk-probe-'):], os.path.basename(t)[len('gtk-probe-'):],"
                   " tempfile_before]))\n")


def test_private_dirs_answer_as_tempfile(tmp_path):
    """make_private_dir/temp_root (no tempfile import: ~4-5 ms of vg-start's first call) choose the
    directory tempfile.gettempdir() chooses -- $TMPDIR, $TEMP, $TMP in that order, a missing or
    unwritable one skipped, the current directory last -- and make the same kind of name."""
    import json
    import string

    ok = tmp_path / "ok"
    ok.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cases = [{}, {"TMPDIR": str(ok)}, {"TMPDIR": str(tmp_path / "missing"), "TEMP": str(other)},
             {"TMP": str(other)}, {"TMPDIR": "", "TEMP": str(ok), "TMP": str(other)},
             {"TMPDIR": "relative"}]
    if os.geteuid() != 0:                            # root writes into a mode-0500 directory
        cases.append({"TMPDIR": str(ro), "TMP": str(ok)})
    (cwd / "relative").mkdir()
    seen = set()
    for extra in cases:
        env = {k: v for k, v in os.environ.items() if k not in ("TMPDIR", "TEMP", "TMP")}
        env.update(extra, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        out = subprocess.run([sys.executable, "-c", TEMP_ROOT_PROBE], capture_output=True, text=True,
                             env=env, cwd=str(cwd), timeout=60)
        assert out.returncode == 0, out.stderr
        mine, theirs, parent, mode, name, their_name, tempfile_before = json.loads(out.stdout)
        assert mine == theirs == parent, extra
        assert mode == oct(0o40700) and not tempfile_before
        allowed = set(string.ascii_lowercase + string.digits + "_")
        assert len(name) == len(their_name) == 8 and set(name) <= allowed and set(their_name) <= allowed
        seen.add(mine)
    assert {str(ok), str(other), str(cwd / "relative")} <= seen
    os.chmod(ro, 0o700)


def test_cache_dir_refuses_foreign_or_writable(tmp_path):
    base = tmp_path / "cache"
    base.mkdir(mode=0o700)
    c = private_dirs.CacheDir.open(str(base))
    c.close()
    os.chmod(base, 0o777)
    with pytest.raises(ToolkitError, match="writable by other"):
        private_dirs.CacheDir.open(str(base))
    os.chmod(base, 0o700)
    if os.geteuid() == 0:
        os.chown(base, 65534, 65534)
        with pytest.raises(ToolkitError, match="owned by uid 65534"):
            private_dirs.CacheDir.open(str(base))
        os.chown(base, 0, 0)
    # an ancestor writable by others without the sticky bit: anyone could swap the cache
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(ToolkitError, match="writable by other"):
        private_dirs.CacheDir.open(str(shared / "mine"))
    os.chmod(shared, 0o1777)                       # like /tmp: fine
    private_dirs.CacheDir.open(str(shared / "mine")).close()


def test_cache_dir_writes_never_follow_planted_links(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    base = tmp_path / "c"
    with private_dirs.CacheDir.open(str(base)) as c:
        os.symlink(victim, base / "ktypes.o")          # planted where the result will go
        path = c.write_atomic("ktypes.o", b"new")
        assert victim.read_bytes() == b"precious"
        assert not os.path.islink(path) and open(path, "rb").read() == b"new"
        assert c.read("ktypes.o") == b"new"
        os.symlink(victim, base / "other")
        with pytest.raises(ToolkitError):
            c.read("other")
        assert not c.exists("other")
        sub = c.subdir("build-id")
        tmp = sub.new_temp("x.o")
        assert os.path.exists(os.path.join(sub.path, tmp))
        sub.commit(tmp, "x.o")
        assert sub.exists("x.o")
        sub.close()
        for bad in ("", "..", "a/b"):
            with pytest.raises(ToolkitError):
                c.file_path(bad)
    assert [n for n in os.listdir(base) if n.endswith(".tmp")] == []


def test_space_error_says_no_space():
    import errno
    e = private_dirs.space_error(OSError(errno.ENOSPC, "No space left on device"), "/tmp/x", "building")
    assert "no space left" in str(e) and "TMPDIR" in str(e)


def test_full_tmpdir_reports_no_space(tmp_path):
    """A real full file system (a 64 KiB tmpfs is not available unprivileged: use /dev/full
    semantics through a tiny loop-free tmpfs when root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tiny tmpfs")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount tmpfs here")
    try:
        with open(mnt / "fill", "wb") as f:
            try:
                f.write(b"x" * (1 << 20))
            except OSError:
                pass
        with pytest.raises(ToolkitError, match="no space left"):
            with private_dirs.CacheDir.open(str(mnt / "c")) as c:
                for i in range(100):
                    c.write_atomic(f"f{i}", b"y" * 65536)
    finally:
        subprocess.run(["umount", str(mnt)])


# -- helper processes ---------------------------------------------------------------------------

def test_helper_env_is_an_allow_list():
    base = {"PATH": ".:/usr/bin::bin", "LD_PRELOAD": "/tmp/evil.so", "PYTHONPATH": "/tmp",
            "PYTHONSTARTUP": "/tmp/x", "BASH_ENV": "/tmp/x", "HOME": "/root", "LANG": "C.UTF-8",
            "SECRET": "x", "GLIBC_TUNABLES": "x"}
    env = helper_process.helper_env(keep=("SECRET",), set={"BCC_KERNEL_SOURCE": "/usr/src/x"}, base=base)
    assert env == {"PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "SECRET": "x",
                   "BCC_KERNEL_SOURCE": "/usr/src/x"}
    assert "LD_PRELOAD" not in helper_process.helper_env(keep=("LD_PRELOAD",), base=base)
    with pytest.raises(ValueError):
        helper_process.helper_env(set={"LD_PRELOAD": "x"})


def test_isolated_python_ignores_planted_modules(tmp_path, monkeypatch):
    """A json.py planted in the cwd (or PYTHONPATH) is not imported by the helper."""
    (tmp_path / "json.py").write_text("open('/dev/stderr','w').write('PLANTED'); raise SystemExit(99)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PYTHONSTARTUP", str(tmp_path / "json.py"))
    argv = helper_process.python_argv(code="import json, os, sys; print(json.__file__, os.getcwd())")
    # the unsafe spelling, for contrast: python3 -c from this cwd imports the planted module
    naive = subprocess.run([sys.executable, "-c", "import json"], capture_output=True, text=True)
    assert naive.returncode == 99
    res = helper_process.run_helper(argv, timeout=30)
    assert res.ok, res
    assert "PLANTED" not in res.stderr
    mod, cwd = res.stdout.split()
    assert mod.startswith("/usr/lib/python3") and cwd == "/"


def test_isolated_python_runs_a_toolkit_module(repo_root):
    argv = helper_process.python_argv(module="gdb_toolkit.common.names", sys_path=[repo_root],
                                      args=["x"])
    res = helper_process.run_helper(argv, timeout=30)
    assert res.ok, res.stderr


def test_run_helper_timeout_and_output_bounds():
    t0 = time.monotonic()
    res = helper_process.run_helper(["/bin/sh", "-c", "sleep 30 & sleep 30"], timeout=1)
    assert res.timed_out and res.returncode is None and time.monotonic() - t0 < 10
    res = helper_process.run_helper(["/bin/sh", "-c", "head -c 5000000 /dev/zero; echo err >&2"],
                                    timeout=30, max_output=1000)
    assert res.ok and len(res.stdout) == 1000 and res.stdout_dropped == 5000000 - 1000
    assert res.stderr == "err\n"
    res = helper_process.run_helper(["/bin/cat"], timeout=10, input=b"\xff\xfe")
    assert names.encode_name(res.stdout) == b"\xff\xfe"



def test_run_helper_answers_as_popen_does(tmp_path):
    """run_helper starts its program with os.posix_spawn (no subprocess in gdb): exit
    statuses, signals and start-up errors are subprocess.Popen's (the oracle), the helper is
    its own session leader in /, and it inherits no descriptor but 0-2."""
    for script in ("exit 0", "exit 7", "kill -9 $$", "kill -15 $$", "echo out; echo err >&2"):
        argv = ["/bin/sh", "-c", script]
        want = subprocess.run(argv, capture_output=True, cwd="/", text=True)
        got = helper_process.run_helper(argv, timeout=30)
        assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)
    plain = tmp_path / "not-executable"
    plain.write_text("")
    for argv, cwd in ((["/nonexistent/prog"], "/"), (["no-such-program-here"], "/"),
                      ([str(plain)], "/"), ([str(tmp_path)], "/"), (["/bin/true"], str(tmp_path / "gone"))):
        with pytest.raises(OSError) as want:
            subprocess.Popen(argv, cwd=cwd, env=helper_process.helper_env())
        with pytest.raises(OSError) as got:
            helper_process.run_helper(argv, timeout=10, cwd=cwd)
        assert (type(got.value), got.value.errno, got.value.strerror) == \
            (type(want.value), want.value.errno, want.value.strerror), argv
    stray = os.open("/etc/hostname", os.O_RDONLY)
    os.set_inheritable(stray, True)
    try:
        res = helper_process.run_helper(
            ["/usr/bin/python3", "-I", "-c", "import os; print(os.getpid() == os.getsid(0), os.getcwd(), "
             "sorted(os.listdir('/proc/self/fd')))"], timeout=30, cwd="/")
    finally:
        os.close(stray)
    assert res.ok and res.stdout.split(" ", 2) == ["True", "/", "['0', '1', '2', '3']\n"]

# -- gdb quoting (pure part; tests/integration/test_safe_gdb.py checks it in gdb) -----------------

def test_quote_filename_rules():
    assert gdb_quoting.quote_filename("/a b/c'd") == "/a\\ b/c\\'d"
    assert gdb_quoting.quote_filename("-x").startswith("/")              # never an option
    assert gdb_quoting.quote_filename("~x").startswith("/")
    for bad in ("/a\nb", "/trail ", "/lat\udce9", "/nul\0", "/tab\t", "/cr\r"):
        assert not gdb_quoting.can_quote_filename(bad)
        with pytest.raises(ValueError):
            gdb_quoting.quote_filename(bad)
    for bad in ("x\ny", "x\0", "x\r", "\udcff"):
        with pytest.raises(ToolkitError) as e:
            gdb_quoting.check_command_text(bad)
        assert "\n" not in str(e.value)
    assert gdb_quoting.alias_basename("/d/--evil name\n") == "evil_name_"
    assert gdb_quoting.shell_word("a'b") == "'a'\\''b'"


def test_cache_or_session_falls_back_on_an_unsafe_home(tmp_path, monkeypatch):
    home_cache = tmp_path / "cache"
    home_cache.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(home_cache))
    c, note = private_dirs.cache_or_session("ktypes")
    assert note is None and c.path == str(home_cache / "gdb_toolkit" / "ktypes")
    c.close()
    os.chmod(home_cache / "gdb_toolkit", 0o777)           # someone made it writable by all
    c, note = private_dirs.cache_or_session("ktypes")
    assert "writable by other users" in note
    assert c.path.startswith(private_dirs.session_dir())
    c.write_atomic("x", b"1")
    c.close()


def test_which_is_shutils_which(tmp_path, monkeypatch):
    """helper_process.which (no shutil import on first calls) answers as shutil.which does:
    executables, not directories or plain files, the first one on the path, PATH unset/empty/':'."""
    import shutil

    from gdb_toolkit.common.helper_process import which

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "tool").write_text("#!/bin/sh\n")
    (b / "tool").write_text("#!/bin/sh\n")
    (b / "tool").chmod(0o755)
    (a / "dir").mkdir()
    (a / "plain").write_text("")
    (b / "both").write_text("")
    (b / "both").chmod(0o755)
    (a / "both").write_text("")
    (a / "both").chmod(0o755)
    names = ["tool", "dir", "plain", "both", "missing", "sh", str(b / "tool"), str(a / "tool"),
             "a/tool", ""]
    paths = [None, "", ":", f"{a}:{b}", f"{b}:{a}", f"{a}:{a}:{b}", f"{a}::{b}", "/usr/bin:/bin"]
    monkeypatch.chdir(tmp_path)
    for env_path in (None, "", f"{b}:/usr/bin"):
        if env_path is None:
            monkeypatch.delenv("PATH", raising=False)
        else:
            monkeypatch.setenv("PATH", env_path)
        for name in names:
            for path in paths:
                assert which(name, path) == shutil.which(name, path=path), (name, path, env_path)


def test_parsed_once_parses_again_only_when_the_file_changed(tmp_path):
    """safe_open.parsed_once, the one cache of a parsed file (kernel BTF, stack-diagnose's core
    had a copy each): the oracle is how often the parser ran and what it read."""
    calls = []

    def parse(path):
        calls.append(path)
        return Path(path).read_bytes()

    cache, a, b = {}, tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    assert safe_open.parsed_once(cache, str(a), parse) == b"one"
    assert safe_open.parsed_once(cache, str(a), parse) == b"one" and len(calls) == 1
    a.write_bytes(b"three")                     # size and mtime change: parsed again
    assert safe_open.parsed_once(cache, str(a), parse) == b"three" and len(calls) == 2
    assert safe_open.parsed_once(cache, str(b), parse) == b"two" and len(calls) == 3
    assert len(cache) == 1                      # one entry: the last file
    with pytest.raises(FileNotFoundError):      # not stat'ed: the parser reports it
        safe_open.parsed_once(cache, str(tmp_path / "gone"), parse)
