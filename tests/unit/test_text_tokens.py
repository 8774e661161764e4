"""Prose wrapping keeps tokens that hold spaces whole (common.text.words): demangled C++
names, quoted strings (a shell-quoted command line), and strings the caller names (a path
with a space).  Found by a daily-user pass (term80): stack-diagnose split a C++ method
name across three lines at 80 columns, vg-start split a program path at its space.

Oracles: names come from binutils' demangler (``nm -C`` on a program g++ compiled here),
command lines are split again by Python's shlex, widths are measured.
"""
import re
import shlex
import shutil
import subprocess

import pytest

from gdb_toolkit.common.meta import CommandMeta
from gdb_toolkit.common.text import key_values, words, wrap_lines

CXX = r"""
#include <map>
#include <string>
#include <vector>
#include <ostream>
namespace outer_namespace { namespace inner {
template <typename T> struct LongTemplateName {
  std::map<std::string, std::vector<T>> m;
  __attribute__((noinline)) int method_with_args(std::map<std::string, std::vector<T>> &a, int d) {
    return (int)a.size() + d; }
  bool operator()(const T &x, long y) const { return y > 0; }
};
struct P { int a; bool operator<(const P &o) const { return a < o.a; } };
}}
std::ostream &operator<<(std::ostream &os, const outer_namespace::inner::P &p) { return os << p.a; }
int main() {
  outer_namespace::inner::LongTemplateName<std::string> x;
  outer_namespace::inner::P a{1}, b{2};
  return x.method_with_args(x.m, 1) + x(std::string("s"), 2) + (a < b);
}
"""


@pytest.fixture(scope="module")
def demangled(tmp_path_factory):
    """Demangled names holding spaces, as binutils prints them."""
    if not (shutil.which("g++") and shutil.which("nm")):
        pytest.skip("g++ and nm (binutils) are needed for the demangled-name oracle")
    d = tmp_path_factory.mktemp("cxx")
    (d / "p.cc").write_text(CXX)
    subprocess.run(["g++", "-O0", "-o", str(d / "p"), str(d / "p.cc")], check=True)
    out = subprocess.run(["nm", "-C", "--defined-only", str(d / "p")], capture_output=True,
                         text=True, check=True).stdout
    names = [ln.split(" ", 2)[2] for ln in out.splitlines() if ln.count(" ") >= 2]
    names = [n for n in names if " " in n and ("outer_namespace" in n or "operator" in n)]
    assert len(names) >= 3, names
    return names


@pytest.mark.parametrize("width", [40, 60, 80, 132])
def test_a_demangled_name_stays_whole_when_it_fits_and_breaks_only_at_its_blanks(demangled, width):
    """A name that fits a line is never cut (stack-diagnose cut one at 80 columns although it
    had a line of its own to go to); a name wider than a whole line is cut at its own
    blanks, and a blank-free part of it that no line holds after ``::``/``<``/``(``/``,``
    (tty), so the terminal never folds it inside an identifier."""
    room = width - 10
    for name in demangled:
        text = f"deep recursion in {name}() (depth 2,024, 4144 B/frame): find why {name} recursed"
        lines = wrap_lines(text, width, "VERDICT   ", " " * 10)
        body = _body(lines, 10)
        # nothing is lost or reordered, and no line is wider than the terminal: a piece wider
        # than the room after the hanging indent goes on a line of its own with a short indent
        # (text.BELOW); only a token no line can hold is left for the terminal to fold
        assert "".join(" ".join(body).split()) == "".join(text.split())
        assert all(w in body_words for body_words in [" ".join(body).split()]
                   for w in text.split() if len(w) <= width - 2), lines
        for ln in lines:
            assert len(ln) <= width or (" " not in ln.strip() and len(ln.strip()) > width - 2
                                        and "::" not in ln), (width, ln)
        if len(name) + 2 <= room:
            assert sum(name in ln for ln in body) == 2, (name, lines)


def test_a_shell_quoted_command_line_splits_back_to_its_words():
    argv = ["/usr/bin/valgrind", "--tool=memcheck", "--log-file=/tmp/my logs/vg.log",
            "/srv/a dir with spaces/my server", "it's", "-p", "80 80"]
    line = " ".join(shlex.quote(w) for w in argv)
    for width in (30, 50, 80):
        out = key_values([("command", line)], width)
        value = " ".join(ln[len("command: "):] for ln in out.splitlines())
        assert shlex.split(value) == argv, out
        for w in argv:              # each quoted word on one line: copyable as it is
            assert any(shlex.quote(w) in ln for ln in out.splitlines()), (w, out)
        for ln in out.splitlines():
            assert len(ln) <= width or ln.strip().startswith("'"), ln


def test_keep_and_whole_roles_keep_a_path_with_a_space():
    path = "/srv/my app/bin/the server"
    lines = wrap_lines(f"{path}: PIE executable, binding lazy", 20, "", "    ", keep=(path,))
    assert lines[0] == path + ":"
    out = key_values([("log", path, "file"), ("note", "a b c d e f g h")], 12)
    assert out.splitlines()[0] == f"log:  {path}"


def test_prose_without_such_tokens_splits_at_every_space():
    prose = ["growing to 8.0 MiB (stack top 0x7ffffffff000 - fault 0x7fffff7fe998) exceeds",
             "vm_end - address = 8392704 > rlimit(RLIMIT_STACK) = 8388608 -> -ENOMEM, so",
             "next: 'continue', Ctrl-C, then 'vg-leaks' / 'vg-errors' (gdb's prompt)",
             "a < b and c > d; [rlimit] stack growth; GOT[1]=0x7ffff7ffe2e0 (this object's",
             "an unclosed template<int, or (paren and 'quote never closed"]
    for p in prose:
        expected = p.split()
        got = words(p)
        # groups may join words, never split or reorder them; a short group is fine
        assert " ".join(got).split() == expected
        assert all(len(w) <= 30 for w in got), got


GOT_LIKE = CommandMeta("got", "GOT slots", "got [--audit] [--diff [FILE]]", """\
One row per GOT slot of the executable, with its state and the object it binds to now,
read from the process.

--preview  the first instruction at each target.
--audit    what the dynamic linker's lookup scope SHOULD bind each slot to
           (search order, versions, preloads, interposition) against what it
           holds: overwritten (hijacked) slots are flagged.
--diff     what changed since the previous 'got' of this session, or since
           a report saved with 'pipe got --json | cat > FILE' (e.g. a core).""", ("got",),
                       "plt", False)


@pytest.mark.parametrize("width", [40, 60, 80, 132])
def test_help_keeps_an_option_list_a_list(width):
    """got --help at 80 columns ran '--preview ... --audit ...' into one paragraph and left
    the continuation lines dangling under it."""
    page = GOT_LIKE.help_page("", width)
    lines = page.splitlines()
    for opt in ("--preview", "--audit", "--diff"):
        starts = [ln for ln in lines if ln.startswith(opt + " ")]
        assert len(starts) == 1, (opt, page)
    for ln in lines:        # a longer line is one token (here a quoted command)
        assert len(ln) <= width or len(words(ln.strip())) == 1, (width, ln)
    # the items' words, in order, as written
    src = GOT_LIKE.description.split("\n\n")[1]
    got = page.split("\n\n")[2] if page.count("\n\n") >= 2 else page
    assert " ".join(got.split()).startswith(" ".join(src.split())[:200]), page
    if width >= 80:
        assert "           (search order" in page or "--audit    what" in page


def test_a_c_prototype_wraps_like_prose():
    """Only C++ names keep their parameter list whole: ksym's BTF prototype of a C function
    (parameter names after types) must still fit 40 columns."""
    proto = "prototype: int do_sys_open(int dfd, const char *filename, int flags, umode_t mode)"
    for width in (30, 40, 60):
        lines = wrap_lines(proto, width, "", "           ")
        assert all(len(ln) <= width for ln in lines), lines
        assert " ".join(lines).split() == proto.split()


def test_a_quantity_keeps_its_unit():
    """'below 8.0 / MiB' read as two facts at 40 columns (stack-diagnose on a core)."""
    text = ("growing to 8.0 MiB (stack top 0x7fff360ff000 - fault 0x7fff358fef98) was refused, "
            "so RLIMIT_STACK was below 8.0 MiB (depth 2,022, 4144 B/frame) in 0.64 s")
    for width in range(24, 81, 4):
        lines = wrap_lines(text, width, "VERDICT   ", " " * 10)
        for ln in lines[1:]:            # no line starts with the unit of the line before's number
            assert not re.match(r"^\s*(MiB|B/frame|s)\b", ln), (width, lines)
        assert " ".join(_body(lines, 10)).split() == text.split()
        assert all(len(ln) <= width for ln in lines), (width, lines)


def _body(lines: list[str], hang: int) -> list[str]:
    """The text of wrapped lines: after the first line's label and the hanging indent, or
    after the short indent of a word moved under them (text.BELOW)."""
    return [ln[hang:] if n == 0 or ln.startswith(" " * hang) else ln.lstrip()
            for n, ln in enumerate(lines)]


def test_a_quoted_sentence_still_wraps():
    text = ("valgrind refused: 'the address range given is not mapped in the client and no block "
            "of the heap holds it at all' (monitor check_memory)")
    lines = wrap_lines(text, 40)
    assert all(len(ln) <= 40 for ln in lines), lines
