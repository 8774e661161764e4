"""The shared renderer, prose wrapping, styles, metadata, envelope and schemas (issue 14).

Oracles are independent of the code: every token of the input must reappear whole in
the output (split on whitespace), line lengths are measured, schemas are checked by
the jsonschema package.
"""
import re

import pytest

from gdb_toolkit.common import envelope
from gdb_toolkit.common.meta import CommandMeta
from gdb_toolkit.common.render import to_jsonable
from gdb_toolkit.common.style import PLAIN, Styler, default_prefixes, sgr
from gdb_toolkit.common.table import Col, render_table
from gdb_toolkit.common.text import key_values, wrap, wrap_lines

ANSI = re.compile(r"\x1b\[[0-9;]*m")

GOT_COLS = [Col("slot", "address"), Col("symbol", "symbol"), Col("type", "key"),
            Col("value", "address"), Col("state", "state"), Col("target"), Col("prot", "key")]
GOT_ROWS = [["0x555555557fd0", "puts@GLIBC_2.2.5", "JUMP_SLOT", "0x7ffff7e50e50", "resolved",
             "puts in /lib/x86_64-linux-gnu/libc.so.6", ""],
            ["0x555555557fd8", "__cxa_finalize@GLIBC_2.2.5", "GLOB_DAT", "0x0", "bound-at-load",
             "set by ld.so at load", ""]]


def tokens(rows) -> list[str]:
    return [t for r in rows for c in r for t in str(c).split()]


def assert_whole(text: str, rows):
    out_tokens = set(ANSI.sub("", text).split())
    for t in tokens(rows):
        assert t in out_tokens, (t, text)


@pytest.mark.parametrize("width", [None, 40, 60, 80, 100, 120, 200])
def test_every_address_and_symbol_is_whole_at_any_width(width):
    text = render_table(GOT_COLS, GOT_ROWS, width)
    assert "…" not in text
    assert_whole(text, GOT_ROWS)


def test_empty_column_is_dropped():
    # issue 14: "a one-row got puts clips because of an empty prot column"
    row = [GOT_ROWS[0][:5] + ["puts in libc.so.6", ""]]       # 88 columns without prot, 94 with
    text = render_table(GOT_COLS, row, 90)
    assert "prot" not in text
    lines = text.splitlines()
    assert lines[0].split() == ["slot", "symbol", "type", "value", "state", "target"]
    assert max(map(len, lines)) <= 90
    assert_whole(text, row)


def test_free_text_wraps_at_spaces_within_width():
    rows = [["0x1000", "main", "a long free text " * 8]]
    text = render_table([Col("address", "address"), Col("symbol", "symbol"), Col("note")], rows, 50)
    assert max(len(ln) for ln in text.splitlines()) <= 50
    assert text.splitlines()[2].split()[:3] == ["0x1000", "main", "a"]
    assert_whole(text, rows)


def test_record_layout_when_unbreakable_columns_do_not_fit():
    text = render_table(GOT_COLS, GOT_ROWS, 60)
    assert "slot:   0x555555557fd0" in text and "symbol: __cxa_finalize@GLIBC_2.2.5" in text
    assert "\n\n" in text          # a blank line between records
    assert_whole(text, GOT_ROWS)


def test_rows_below_are_whole_and_wrapped():
    fix = "boot a kernel with CONFIG_PROC_KCORE=y (Debian's linux-image-amd64 has it)"
    text = render_table([Col("check", "key"), Col("status", "state"), Col("detail")],
                        [["/proc/kcore", "missing", "absent"], ["gdb", "ok", "13.1"]], 60,
                        below=[[("fix", fix)], None])
    assert max(len(ln) for ln in text.splitlines()) <= 60
    assert " ".join(text.split("fix:", 1)[1].split()).startswith(fix)


def test_unlimited_width_wraps_long_free_text_instead_of_padding():
    rows = [["a", "word " * 60], ["b", "short"]]
    text = render_table([Col("k", "key"), Col("text"), Col("z", "key")], [r + ["x"] for r in rows], None)
    assert max(len(ln) for ln in text.splitlines()) <= 3 + 80 + 3


def test_thousands_of_rows_keep_the_fast_layout():
    rows = [[f"0x{i:x}", f"sym{i}", "text"] for i in range(5000)]
    text = render_table([Col("a", "address"), Col("s", "symbol"), Col("t")], rows, 80)
    assert text.count("\n") == 5002


def test_ksym_shaped_table_never_clips():
    rows = [["0xffffffff81234567", "T", "do_sys_openat2", "vmlinux", "1234",
             "long do_sys_openat2(int dfd, const char *filename, struct open_how *how)"]]
    cols = [Col("address", "address"), Col("type", "key"), Col("symbol", "symbol"),
            Col("module", "file"), Col("size", "number"), Col("prototype (BTF)")]
    for width in (40, 80, 100, 200, None):
        text = render_table(cols, rows, width)
        assert "0xffffffff81234567" in text and "do_sys_openat2" in text
        assert "…" not in text


def test_styles_follow_roles_and_plain_strips_nothing():
    styled = render_table(GOT_COLS, GOT_ROWS, 200, styler=Styler(default_prefixes()))
    assert sgr("blue") + "0x555555557fd0" in styled          # address style
    assert sgr("yellow") + "puts@GLIBC_2.2.5" in styled       # function style
    assert sgr("green") + "resolved" in styled                # state colour
    assert ANSI.sub("", styled) == render_table(GOT_COLS, GOT_ROWS, 200)
    assert render_table(GOT_COLS, GOT_ROWS, 200, styler=PLAIN) == render_table(GOT_COLS, GOT_ROWS, 200)


def test_wrap_never_breaks_a_word_or_address():
    text = "the slot 0xffffffff81234567 of puts@GLIBC_2.2.5 in /lib/x86_64-linux-gnu/libc.so.6 " * 3
    for width in (10, 20, 30, 79):
        lines = wrap_lines(text, width)
        assert " ".join(lines).split() == text.split()
        for ln in lines:
            assert len(ln) <= width or " " not in ln.strip()
    assert wrap("a b", None) == "a b\n"


def test_key_values_wrap_under_the_value():
    out = key_values([("command", "valgrind --tool=memcheck --vgdb=yes " * 4), ("pid", 12)], width=50)
    lines = out.splitlines()
    assert lines[0].startswith("command: valgrind")
    assert all(ln.startswith("         ") for ln in lines[1:-1])
    assert lines[-1] == "pid:     12"
    assert max(map(len, lines)) <= 50


def test_meta_from_docstring_and_declared():
    class Legacy:
        name = "demo"
        __module__ = "gdb_toolkit.plt.gdb_commands"
        __doc__ = """Do a demo thing.

Usage: demo [X] [--json]
       demo --stop

Some text.

Example:
  (gdb) demo 1
  (gdb) demo --json"""

    m = CommandMeta.of(Legacy)
    assert (m.summary, m.usage_lines(), m.examples, m.category) == \
        ("Do a demo thing.", ["demo [X] [--json]", "demo --stop"], ("demo 1", "demo --json"), "plt")
    assert m.gdb_name == "toolkit demo" and m.short_name == "demo"
    assert m.help_line() == "toolkit demo, demo -- Do a demo thing."
    assert "Usage: demo [X] [--json]\n       demo --stop" in m.help_text()
    assert "  (gdb) demo 1" in m.help_text()

    class Declared:
        name = "toolkit thing"
        summary = "A thing"
        usage = "toolkit thing [--json]"
        examples = ("toolkit thing",)
        category = "toolkit"
        repeat = True

    d = CommandMeta.of(Declared)
    assert d.short_name is None and d.repeat and d.help_line() == "toolkit thing -- A thing"
    assert d.summary_budget() == 79 - len("toolkit thing -- ")


def test_envelope_and_hex_addresses():
    from dataclasses import dataclass

    @dataclass
    class Slot:
        address: int
        symbol: str
        size: int
        target_address: int | None

    data = to_jsonable([Slot(0xffffffff81234567, "x", 8, None)], hex_addresses=True)
    assert data == [{"address": "0xffffffff81234567", "symbol": "x", "size": 8, "target_address": None}]
    assert to_jsonable({"addresses": [1, 2], "count": 2}, True) == {"addresses": ["0x1", "0x2"], "count": 2}
    assert to_jsonable({"address": 16}) == {"address": 16}          # commands not converted yet
    doc = envelope.ok("got", data)
    assert doc["ok"] and doc["schema_version"] == envelope.SCHEMA_VERSION and doc["error"] is None


def test_schemas_accept_good_documents_and_reject_bad_ones():
    pytest.importorskip("jsonschema", reason="python3-jsonschema is installed by scripts/setup.sh")
    from gdb_toolkit.common.schemas import available, errors, load, validate_document

    for name in available():
        assert load(name)["$id"].endswith(name)
    good = envelope.ok("toolkit doctor", {"checks": [{"name": "gdb", "state": "ok", "detail": "13.1",
                                                      "fix": "", "used_by": ""}], "notes": []})
    assert validate_document(good) == []
    bad = envelope.ok("toolkit doctor", {"checks": [{"name": "gdb", "state": "fine"}]})
    assert validate_document(bad)
    failed = envelope.error("got", envelope.FAILED, "no process. Fix: run.", "no process", "run")
    assert validate_document(failed) == []
    assert validate_document(dict(failed, result={"x": 1}))      # a failure carries no result
    assert errors("0xffffffff81234567", "common.schema.json") == []
    assert validate_document(envelope.ok("no-such-command", {})) == \
        ["no schema file no-such-command.schema.json for no-such-command"]


def test_names_with_control_characters_or_bad_bytes_are_escaped_everywhere():
    import json

    from gdb_toolkit.common.render import dumps

    evil = "evil\x1b[2J" + b"\xe9".decode("utf-8", "surrogateescape")
    text = render_table([Col("file", "file"), Col("n", "number")], [[evil, 1]], 80)
    assert "\x1b" not in text and "evil\\x1b[2J\\xe9" in text
    assert "\x1b" not in wrap(f"opened {evil} ok", 80) and "\\xe9" in wrap(f"opened {evil}", 80)
    doc = json.loads(dumps({"file": evil, "ok": "caf\u00e9", "emoji": "\U0001f600"}))
    assert doc == {"file": "evil\\x1b[2J\\xe9", "ok": "caf\u00e9", "emoji": "\U0001f600"}


def test_notes_block_wraps_each_note_under_itself():
    from gdb_toolkit.common.text import notes_block

    out = notes_block(["not running: values are the file's; 'start' to see them resolved " * 2, "b"], 40)
    lines = out.splitlines()
    assert lines[0].startswith("note: not running:") and lines[-1] == "note: b"
    assert all(ln.startswith("      ") for ln in lines[1:-1]) and max(map(len, lines)) <= 40
    assert notes_block([], 80) == ""


def _grid_oracle(headers, aligns, rows) -> str:
    """An independent rendering of a table that needs no wrapping: str.ljust/rjust per cell,
    empty columns left out, the last column unpadded, no trailing spaces."""
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    keep = [i for i in range(len(headers)) if any(r[i] for r in cells)]
    widths = {i: max([len(headers[i])] + [len(r[i]) for r in cells]) for i in keep}

    def line(values):
        parts = []
        for n, i in enumerate(keep):
            v = values[i]
            if aligns[i] == "right":
                parts.append(v.rjust(widths[i]))
            else:
                parts.append(v if n == len(keep) - 1 else v.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    out = [line(headers), "  ".join("-" * widths[i] for i in keep)]
    return "\n".join(out + [line(r) for r in cells]) + "\n"


@pytest.mark.parametrize("seed", range(6))
def test_large_tables_match_an_independent_layout_and_style_only_adds_escapes(seed):
    # the row-at-a-time layout (thousands of rows) against str.ljust/rjust: numbers
    # right-aligned, ints and None as cells, an empty column dropped, styles add only escapes
    import random

    rng = random.Random(seed)
    cols = [Col("rec", "number"), Col("kind", "state"), Col("bytes", "number"), Col("empty", "number"),
            Col("address", "address"), Col("allocated in", "symbol"), Col("at", "location")]
    rows = [[rng.randrange(1, 10 ** rng.randint(1, 6)), rng.choice(["definite", "possible", "ok"]),
             f"{rng.randrange(10 ** 7):,}", None if rng.random() < 0.5 else "",
             f"0x{rng.randrange(1 << 47):x}", rng.choice(["walk", "main", "std::vector<int>::push_back"]),
             f"file{rng.randrange(100)}.c:{rng.randrange(1, 5000)}"] for _ in range(3000)]
    expected = _grid_oracle([c.header for c in cols], [c.align for c in cols], rows)
    for width in (None, 200):
        assert render_table(cols, rows, width) == expected
        styled = render_table(cols, rows, width, styler=Styler(default_prefixes()))
        assert ANSI.sub("", styled) == expected
        assert sgr("blue") + "0x" in styled and sgr("yellow") in styled
