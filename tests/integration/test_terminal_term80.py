"""term80's adversarial pass over issue 14's terminal rules, with cases not in the issue:
prose that starts with an option, names carrying control bytes, escapes, widths narrower
than an address, gdb's styling on.

Oracles: the command's own source text (the words its description must print, in order),
readelf/nm (the bytes of a symbol), the width arithmetic itself.
"""
import ast
import os
import re

import pytest

from tests.support.gdbrun import REPO, run_gdb

pytestmark = pytest.mark.gdb


def _description(domain: str, command_name: str) -> str:
    """The ``description`` a command class declares, read from its source with ast (the
    words its help must print, in this order)."""
    tree = ast.parse((REPO / "gdb_toolkit" / domain / "gdb_commands.py").read_text())
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        attrs = {t.id: n.value for n in cls.body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name)}
        if "name" in attrs and ast.literal_eval(attrs["name"]) == command_name:
            return ast.literal_eval(attrs["description"])
    raise AssertionError(f"no command {command_name} in {domain}")


@pytest.mark.parametrize("domain,command", [("valgrind", "vg-start"), ("ktrace", "ktrace"),
                                            ("doctor", "toolkit doctor"),
                                            ("valgrind", "vg-attach")])
@pytest.mark.parametrize("width,form", [(50, "--help"), (80, "help")])
def test_help_prose_starting_with_an_option_is_not_a_hanging_list_item(domain, command, width, form):
    """A description line of running prose that happens to start with an option
    (vg-start: '--vgdb-prefix=P after "--" are honoured.  Its stdout/stderr go to gdb's
    terminal') was taken for a definition-list item: its sentence after the double space
    hung 13 columns in under itself, mid-paragraph ('             terminal'), and every
    source line of ktrace's '--pid ...' / '--args ...' sentences became its own ragged
    paragraph.  These descriptions have no list: no line of them is indented, and the
    words are the declared ones, in order (``help NAME``: gdb prints it as it is, made for
    80 columns; ``NAME --help``: wrapped to gdb's width)."""
    desc = _description(domain, command)
    assert not any(ln.startswith(" ") for ln in desc.splitlines())   # no list items declared
    res = run_gdb([f"set width {width}", f"help {command}" if form == "help" else f"{command} --help"])
    lines = res.stdout.splitlines()
    first = desc.split()[0]
    start = next(i for i, ln in enumerate(lines) if ln.startswith(first + " "))
    end = next(i for i in range(start, len(lines))
               if lines[i].startswith(("positional", "options:", "Example")))
    body = [ln for ln in lines[start:end] if ln.strip()]
    indented = [ln for ln in body if ln.startswith(" ")]
    assert not indented, "\n".join(lines[start:end])
    assert " ".join(body).split() == desc.split()
    assert all(len(ln) <= width or " " not in ln for ln in body), "\n".join(body)


# -- names and dump text carrying control bytes ---------------------------------------------------
#: what a crafted vmcore's VMCOREINFO may hold: a screen clear, an OSC window title, a colour
HOSTILE_VMCOREINFO = {"OSRELEASE": "6.1.0-ev\x1b[2Jil", "EVIL": "\x1b]0;pwned\x07 \x1b[31mred\rover"}


def _hostile_vmcore(tmp_path):
    from tests.support.kcore_fixture import BENCH_KTEXT, write_code_kcore, write_kcore

    plain = write_code_kcore(tmp_path)
    code = plain["kcore"].read_bytes()[0x1000:0x2000]
    path = tmp_path / "hostile.vmcore"
    write_kcore(path, {BENCH_KTEXT: code},
                "".join(f"{k}={v}\n" for k, v in HOSTILE_VMCOREINFO.items()) + "PAGESIZE=4096\n")
    return path, plain["kallsyms"]


def _escaped(value: str) -> str:
    """docs/security.md's rendering of control characters: \\xNN (the oracle, written out)."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x20 else c for c in value)


def test_kcore_all_info_escapes_the_dumps_vmcoreinfo(tmp_path):
    """`kcore --all-info` printed the dump's VMCOREINFO lines raw: a crafted vmcore cleared
    the screen, set the terminal's title (OSC 0) and coloured what followed.  Each line is
    now shown escaped (\\x1b...), under a heading, wrapped like prose."""
    vmcore, kallsyms = _hostile_vmcore(tmp_path)
    for width in ("unlimited", "60"):
        res = run_gdb([f"set width {width}", f"kcore {vmcore} --kallsyms {kallsyms} --all-info"])
        out = res.stdout
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", out), repr(out)
        for key, value in HOSTILE_VMCOREINFO.items():
            assert f"{key}={_escaped(value)}" in out, out


def test_styled_terminal_keeps_its_title_and_screen(tmp_path):
    """The same dump in an interactive gdb at 80 columns with styling on: the styles pass
    (gdb's address style), the dump's OSC title does not reach the terminal (tmux's pane
    title is the oracle) and the lines before the command stay on the screen."""
    from tests.support.tmux import TmuxGdb

    vmcore, kallsyms = _hostile_vmcore(tmp_path)
    with TmuxGdb(width=80, pre=("set style enabled on",)) as t:
        title = t._tmux("display-message", "-p", "-t", t.name, "#{pane_title}").strip()
        t.run("echo BEFORE-THE-DUMP\\n")
        rows = t.run(f"kcore {vmcore} --kallsyms {kallsyms} --all-info", styled=True)
        assert any("\x1b[" in r for r in rows), rows                 # styled output
        plain = t.rows()
        assert any("BEFORE-THE-DUMP" in r for r in plain), plain     # no screen clear
        assert t._tmux("display-message", "-p", "-t", t.name, "#{pane_title}").strip() == title
        assert any(f"EVIL={_escaped(HOSTILE_VMCOREINFO['EVIL'])}" in r for r in plain), plain


KT_PROGRAM = r"""
#include <sys/prctl.h>
#include <sys/mman.h>
__attribute__((noinline)) void after_mmap(void) { __asm__ volatile(""); }
int main(void) {
  prctl(PR_SET_NAME, "ev\x1b[2Jil\r\x07");
  void *p = mmap(0, 1 << 22, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  after_mmap();
  return p == 0;
}
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="BPF needs root")
@pytest.mark.skipif(os.environ.get("GDB_TOOLKIT_IN_GUEST") == "1", reason="host test")
def test_ktrace_event_line_escapes_the_traced_process_name():
    """A traced process names itself (prctl PR_SET_NAME): ktrace's event lines, printed when
    the program stops with a trace armed, wrote its comm raw (ESC [2J, CR, BEL reached the
    terminal; with --all any process on the machine could).  Now escaped like every name,
    through the output guard.  Oracle: the name the program gave itself (its source)."""
    from tests.support.gdbrun import compile_c
    from tests.support.ktrace_oracles import wait_no_programs

    prog = compile_c(KT_PROGRAM, name="kt_hostile_comm", flags=["-g", "-O0"])
    res = run_gdb(["break after_mmap", "start > /dev/null",
                   "ktrace tracepoint:syscalls:sys_enter_mmap --args len", "continue",
                   "ktrace --stop"], program=prog)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("[ktrace] ev")), None)
    assert line is not None, res.stdout + res.stderr
    assert line.startswith("[ktrace] ev\\x1b[2Jil\\x0d\\x07 pid "), repr(line)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", res.stdout), repr(res.stdout)
    assert wait_no_programs() == []


#: a library exporting a function whose name holds ESC [2J (assembled: gcc cannot spell it)
ESC_SYMBOL = b"esc\x1b[2Jsym"
ESC_LIB_ASM = (b'\t.text\n\t.globl "%s"\n\t.type "%s", @function\n"%s":\n\tret\n'
               b"\t.globl libfunc\n\t.type libfunc, @function\nlibfunc:\n\tret\n"
               b'\t.section .note.GNU-stack,"",@progbits\n') % ((ESC_SYMBOL,) * 3)
ESC_CALL_ASM = (b'\t.text\n\t.globl callit\ncallit:\n\tjmp "%s"@PLT\n'
                b'\t.section .note.GNU-stack,"",@progbits\n') % ESC_SYMBOL
ESC_MAIN = b"""
void callit(void); void libfunc(void);
__attribute__((noinline)) void marker(void) { __asm__ volatile(""); }
int main(void) { callit(); libfunc(); marker(); return 0; }
"""


def test_a_name_shows_the_same_whatever_its_cell_holds(tmp_path):
    """got's target cell is composed: the bound symbol (raw from the ELF file) and the object
    it lives in (a path, escaped already).  A symbol holding ESC made the whole cell go
    through escape_name, which doubled the backslashes of the escaped library name: the same
    library read 'lib\\x0aesc.so' on one row and 'lib\\\\x0aesc.so' on the next.  Oracles:
    readelf (the symbol's bytes are what the program imports) and the escaping rule of
    docs/security.md applied to the bytes the test wrote."""
    import shutil
    import subprocess

    if not (shutil.which("gcc") and shutil.which("readelf")):
        pytest.skip("gcc and readelf are needed")
    tmp = os.fsencode(tmp_path)
    libdir = os.path.join(tmp, b"dir")
    os.mkdir(libdir)
    libname = b"lib\nesc.so"                      # a newline in the library's file name
    for name, data in ((b"lib.s", ESC_LIB_ASM), (b"call.s", ESC_CALL_ASM), (b"main.c", ESC_MAIN)):
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
    subprocess.run([b"gcc", b"-shared", b"-fPIC", b"-o", os.path.join(libdir, libname),
                    os.path.join(tmp, b"lib.s"), b"-Wl,-soname," + libname], check=True)
    prog = os.path.join(tmp, b"prog")
    subprocess.run([b"gcc", b"-g", b"-o", prog, os.path.join(tmp, b"main.c"), os.path.join(tmp, b"call.s"),
                    b"-L" + libdir, b"-l:" + libname, b"-Wl,-rpath," + libdir], check=True)
    relocs = subprocess.run([b"readelf", b"-rW", prog], capture_output=True, check=True).stdout
    # readelf shows a control byte as ^X: the program imports the name with its ESC
    assert ESC_SYMBOL.replace(b"\x1b", b"^[") in relocs and b"libfunc" in relocs

    res = run_gdb(["break marker", "run", "got"], program=os.fsdecode(prog))
    shown_lib = "lib\\x0aesc.so"                  # \n as \x0a, once
    shown_sym = "esc\\x1b[2Jsym"
    rows = {ln.split()[1]: ln for ln in res.stdout.splitlines() if ln.startswith("0x") and
            len(ln.split()) > 1}
    assert f"{shown_sym} in {shown_lib}" in rows.get(shown_sym, ""), res.stdout
    assert f"libfunc in {shown_lib}" in rows.get("libfunc", ""), res.stdout
    assert "\\\\" not in res.stdout and "\x1b" not in res.stdout, res.stdout


def _split_operands(text: str) -> list[str]:
    """Lines holding a '[' whose ']' is on a later line: a memory operand cut in two."""
    return [ln for ln in text.splitlines() if ln.count("[") > ln.count("]")]


@pytest.mark.parametrize("width", [40, 50])
def test_a_memory_operand_is_never_cut_across_lines(tmp_path, width):
    """kdis at 40 columns (record layout) printed 'instruction: mov eax, dword ptr [rsp +'
    and '8]' on the next line; plt-walk's hops 'mov dword ptr [rbp' / '- 4], edi'.  An
    operand is one word now.  The kcore's text is libc's real code (kcore_fixture)."""
    from tests.support.first_calls import programs

    p = programs(tmp_path)
    src = f"--kcore {p['kcore']} --kallsyms {p['kallsyms']}"
    res = run_gdb([f"set width {width}", f"kdis vfs_read 64 {src}", f"kdis do_sys_openat2 64 {src}"])
    assert res.stdout.count("[") > 20, res.stdout            # the case: many memory operands
    assert not _split_operands(res.stdout), "\n".join(_split_operands(res.stdout))
    res = run_gdb([f"set width {width}", "break main", "run", "plt-walk puts"], program=p["hello"])
    walk = res.stdout[res.stdout.index("[1]"):]
    assert walk.count("[r") >= 2, walk
    assert not _split_operands(walk), "\n".join(_split_operands(walk))


LONG_IMPORTS = r"""
#include <pthread.h>
#include <stdio.h>
static void *run(void *a) { return a; }
int main(void) {
  pthread_attr_t at; pthread_t t;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 1 << 20);
  pthread_attr_setguardsize(&at, 1 << 12);
  pthread_create(&t, &at, run, 0);
  pthread_join(t, 0);
  puts("done");
  return 0;
}
"""


def _overflowing(lines: list[str], width: int) -> list[str]:
    """Lines wider than *width* that a line of their own could have held: more than one word,
    or one word with two blanks of indent to spare."""
    out = []
    for ln in lines:
        value = re.sub(r"^\s*[A-Za-z][\w /-]*:\s+", "", ln)       # after a 'key:' label
        if len(ln) > width and (len(value.split()) > 1 or len(value.strip()) + 2 <= width):
            out.append(ln)
    return out


@pytest.mark.parametrize("width", [40, 42])
def test_a_whole_token_too_wide_for_its_label_goes_under_it(width):
    """At 40 columns got's record layout printed 'symbol: pthread_attr_setstacksize@GLIBC_2.34'
    (44 columns) and stack-diagnose 'guard:       0x7ffff7d90000-0x7ffff7d91000': the terminal
    folded them in the middle of the name, the address.  A value wider than the room after its
    label but narrower than the line now goes whole on the next line, indented.  Oracle:
    readelf's relocation names (each whole on one row), the width arithmetic."""
    import shutil
    import subprocess

    from tests.support.gdbrun import compile_c

    if shutil.which("readelf") is None:
        pytest.skip("readelf is the oracle")
    prog = compile_c(LONG_IMPORTS, name="long_imports", flags=["-g", "-pthread"])
    relocs = subprocess.run(["readelf", "-rW", str(prog)], capture_output=True, text=True,
                            check=True).stdout
    names = re.findall(r"R_X86_64_(?:JUMP_SLO|GLOB_DA)T\s+\S+\s+(\S+@\S+) \+ 0", relocs)
    assert any(len(n) > width - len("symbol: ") for n in names), names    # the case
    res = run_gdb([f"set width {width}", "break main", "run", "got"], program=prog)
    lines = res.stdout[res.stdout.index("slot:"):].splitlines()
    assert not _overflowing(lines, width), "\n".join(_overflowing(lines, width))
    for n in names:
        assert any(ln.strip() == n or ln.split()[-1:] == [n] for ln in lines), (n, res.stdout)

    recurse = compile_c(REPO / "examples" / "stack" / "recurse.c", flags=["-g", "-O0"])
    res = run_gdb([f"set width {width}", "run", "stack-diagnose"], program=recurse, timeout=240)
    lines = res.stdout[res.stdout.index("stack-diagnose:"):].splitlines()
    assert any(re.search(r"0x[0-9a-f]{12}-0x[0-9a-f]{12}", ln) for ln in lines), res.stdout
    assert not _overflowing(lines, width), "\n".join(_overflowing(lines, width))


def _segment_bytes(kcore, vaddr: int, size: int) -> bytes:
    """*size* bytes at kernel address *vaddr* of a kcore file, read through its program
    headers with pyelftools (the oracle: not the toolkit's reader)."""
    from elftools.elf.elffile import ELFFile

    with open(kcore, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_filesz"]:
                f.seek(seg["p_offset"] + vaddr - seg["p_vaddr"])
                return f.read(size)
    raise AssertionError(f"0x{vaddr:x} is in no PT_LOAD of {kcore}")


@pytest.mark.parametrize("width", [80, 60, 40])
def test_kx_hex_dump_fits_the_terminal(tmp_path, width):
    """kx printed 16 bytes a line whatever the width: '0xADDR:  <16 hex>  <16 ascii>' is 86
    columns, so at 80 the terminal folded every line through the ASCII column (and at 40
    through the bytes).  8 or 4 bytes a line when 16 do not fit, as gdb's x does; the bytes
    are the kcore's own (pyelftools reads them from the file)."""
    pytest.importorskip("elftools")
    from tests.support.first_calls import programs

    p = programs(tmp_path)
    kallsyms = p["kallsyms"].read_text()
    banner = int(re.search(r"^([0-9a-f]+) D linux_banner$", kallsyms, re.M).group(1), 16)
    res = run_gdb([f"set width {width}", f"kx linux_banner 64 --kcore {p['kcore']} --kallsyms {p['kallsyms']}"])
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("0x") and ":  " in ln]
    assert lines, res.output
    assert all(len(ln) <= width for ln in res.stdout.splitlines()), res.stdout
    shown, at = b"", banner
    per = len(re.match(r"((?:[0-9a-f]{2} )*[0-9a-f]{2})", lines[0].split(":  ", 1)[1]).group(1)) // 3 + 1
    for ln in lines:
        head, rest = ln.split(":  ", 1)
        assert int(head, 16) == at, (hex(at), ln)
        hexpart = re.match(r"((?:[0-9a-f]{2} )*[0-9a-f]{2})", rest).group(1)
        chunk = bytes.fromhex(hexpart)
        ascii_text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        assert rest[3 * per + 1:].rstrip() == ascii_text.rstrip(), (ln, ascii_text)
        shown += chunk
        at += len(chunk)
    assert shown == _segment_bytes(p["kcore"], banner, 64)


@pytest.mark.skipif(__import__("shutil").which("valgrind") is None, reason="valgrind is not installed")
def test_vg_errors_styles_its_stacks_as_gdbs_backtrace_does():
    """With styling on, vg-errors printed its error's stack ('at main (memcorrupt.c:11)',
    'by ...') plain while gdb's own backtrace of the same stop styles the function and the
    file.  Oracle: gdb's `bt` in the same session, with the same styles (function, file)."""
    from tests.support.gdbrun import compile_c
    from tests.support.tmux import ANSI, TmuxGdb

    prog = compile_c(REPO / "examples" / "valgrind" / "memcorrupt.c", flags=["-g", "-O0"])
    with TmuxGdb(width=100, pre=("set style enabled on",)) as t:
        t.run(f"vg-start {prog}", timeout=120)
        t.run("continue", timeout=120)                      # stops on the invalid write
        bt = "\n".join(t.run("bt 1", styled=True))
        fn = re.search(r"(\x1b\[[0-9;]*m)main\x1b\[[0-9;]*m", bt)        # gdb resets with [39m
        src = re.search(r"(\x1b\[[0-9;]*m)[^\x1b]*memcorrupt\.c\x1b\[[0-9;]*m", bt)
        assert fn and src, ascii(bt)                         # gdb styles them: the oracle
        rows = t.run("vg-errors", styled=True, timeout=120)
        frames = [r for r in rows if ANSI.sub("", r).lstrip().startswith(("at main ", "by main "))]
        assert frames, ascii(rows)
        assert fn.group(1) + "main\x1b[" in frames[0], ascii(frames)
        assert re.search(re.escape(src.group(1)) + r"[^\x1b]*memcorrupt\.c:\d+\x1b\[", frames[0]), ascii(frames)
        t.run("kill", timeout=60)
