"""Tables and prose measure terminal columns, not code points: a Chinese file or function
name (the seeds' users; gcc accepts UTF-8 identifiers) takes two columns per character.
Before, a column after such a cell was pushed right in its row only, and wrapped prose
overflowed the width.

Oracle: glibc's wcswidth(3) (what a terminal uses), through ctypes in a UTF-8 locale.
"""
import ctypes
import ctypes.util
import locale

import pytest

from gdb_toolkit.common.table import Col, render_table
from gdb_toolkit.common.style import Styler, default_prefixes
from gdb_toolkit.common.text import wrap_lines

import re

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def wcswidth():
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    old = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
    except locale.Error:
        pytest.skip("no C.UTF-8 locale for wcswidth")
    libc.wcswidth.argtypes = [ctypes.c_wchar_p, ctypes.c_size_t]

    def width(s: str) -> int:
        n = libc.wcswidth(s, len(s))
        assert n >= 0, s
        return n
    yield width
    locale.setlocale(locale.LC_CTYPE, old)


ROWS = [["#0", "递归函数", "80 B", "0x7fffff7fefe0", "递归.c:11"],
        ["#1", "recurse", "80 B", "0x7fffff7ff030", "recurse.c:17"],
        ["#2", "main", "4.0 KiB", "0x7fffff7ff080", "主程序.c:30"]]
COLS = [Col("frame", "key"), Col("function", "symbol"), Col("size", "number"),
        Col("sp", "address"), Col("where", "location")]


@pytest.mark.parametrize("styled", [False, True])
def test_columns_line_up_after_a_wide_cell(wcswidth, styled):
    styler = Styler(default_prefixes()) if styled else None
    text = ANSI.sub("", render_table(COLS, ROWS, 80, styler=styler))
    lines = text.splitlines()
    starts = set()
    for ln, row in zip(lines[2:], ROWS):
        starts.add(wcswidth(ln[:ln.index(row[3])]))      # the sp column starts here
    assert len(starts) == 1, text
    head = lines[0]
    assert wcswidth(head[:head.index("sp ")]) in starts, text
    for ln in lines:
        assert wcswidth(ln) <= 80


def test_record_layout_and_prose_fit_by_display_width(wcswidth):
    text = render_table(COLS, ROWS, 30)
    assert "function: 递归函数" in text                  # records: too wide for 30 columns
    prose = "栈溢出 在 递归函数 中 深度 104,823 帧 每帧 80 B 请 检查 终止 条件 " * 3
    for width in (20, 30, 40):
        lines = wrap_lines(prose, width)
        assert all(wcswidth(ln) <= width for ln in lines), lines
        assert " ".join(lines).split() == prose.split()


@pytest.mark.parametrize("styled", [False, True])
def test_a_long_title_wraps_inside_its_style(wcswidth, styled):
    """stack-diagnose's 'frames: innermost 128 (bounded walk); size = ...' title (79 columns)
    and toolkit commands' category titles were printed whole at 40 and 60 columns."""
    styler = Styler(default_prefixes())
    title = "frames: innermost 128 (bounded walk); size = caller's sp - sp (CFA difference)"
    shown = styler("title", title) if styled else title
    text = render_table(COLS, ROWS, 60, title=shown, styler=styler if styled else None)
    head = text.split("\nframe ")[0].splitlines()
    assert len(head) == 2, head
    for ln in head:
        assert wcswidth(ANSI.sub("", ln)) <= 60
        if styled:      # each line styled on its own: no style bleeds into the next row
            assert ln.startswith(default_prefixes()["title"]) and ln.endswith("\x1b[m"), ln
    assert " ".join(ANSI.sub("", " ".join(head)).split()) == title
