"""The PLT/GOT commands' prose and JSON words, without gdb: counted nouns, wrapping that keeps a
path holding spaces whole (checked by the width arithmetic, not by the wrapper), gdb styles on
the words of a line, and words of memory printed "0x..." like addresses (docs/json.md)."""
import json

from gdb_toolkit.common.render import to_jsonable
from gdb_toolkit.common.style import Styler, sgr
from gdb_toolkit.plt.diff import diff_reports
from gdb_toolkit.plt.slots import ObjectSummary, SlotRow
from gdb_toolkit.plt.walk import Hop, LiveWrite, Location, WalkReport
from gdb_toolkit.plt.wording import counted, headed, styled_line, wrap_keep

PATH = "/tmp/a b/hello calls"


def test_counted_nouns():
    assert counted(1, "slot") == "1 slot"
    assert counted(0, "slot") == "0 slots" and counted(8, "slot") == "8 slots"
    assert counted(2, "IRELATIVE (ifunc) stub") == "2 IRELATIVE (ifunc) stubs"
    assert counted(3, "entry", "entries") == "3 entries"


def test_a_kept_path_is_never_split_and_the_rest_fits():
    text = f"note: {PATH} was deleted or replaced on disk after the process loaded it"
    for width in range(12, 90):
        lines = wrap_keep(text, width, "", "  ", keep=(PATH,))
        assert sum(PATH in ln for ln in lines) == 1, (width, lines)
        for ln in lines:
            assert len(ln) <= width or ln.strip().startswith(PATH[:6]), (width, ln)
        assert " ".join(ln.strip() for ln in lines) == text            # nothing lost or added


def test_heading_puts_the_path_first_and_alone_when_nothing_fits_beside_it():
    rest = "PIE executable, binding lazy, load bias 0x555555554000, 1 slot"
    for width in (20, 24, 25, 26, 40, 80):
        lines = headed(PATH, rest, width, keep=("1 slot",)).splitlines()
        assert lines[0].startswith(PATH + ":")
        if len(PATH) + 2 + len("PIE") > width:          # 'PATH: PIE' is wider than the line
            assert lines[0] == PATH + ":"
        else:
            assert lines[0].startswith(PATH + ": PIE") and len(lines[0]) <= width
        assert any("1 slot" in ln for ln in lines)
        assert all(len(ln) <= width for ln in lines[1:])


def test_heading_path_in_the_filename_style_and_addresses_in_the_address_style():
    styler = Styler({"file": sgr("green"), "address": sgr("blue")})
    look = {"0x555555554000": styler("address", "0x555555554000")}
    out = headed(PATH, "PIE executable, load bias 0x555555554000", 200, styler=styler, look=look)
    assert out.startswith("\x1b[32m" + PATH + "\x1b[m: ")
    assert "bias \x1b[34m0x555555554000\x1b[m" in out


def test_styled_line_styles_known_words_only():
    look = {"0x555555558000": "<A>", "main+49": "<S>", "0x7ffff7fdc290": "<G>", "0x10": "<lo>", "0x20": "<hi>"}
    line = "jmp *0x555555558000 (main+49), GOT[2]=0x7ffff7fdc290: [rip + 0x2fca] RELRO 0x10-0x20"
    assert styled_line(line, look) == \
        "jmp *<A> (<S>), GOT[2]=<G>: [rip + 0x2fca] RELRO <lo>-<hi>"
    assert styled_line(line, {}) == line


def _row(value=0x7ffff7e4a980):
    return SlotRow("hello calls", 0x555555558000, "puts@GLIBC_2.2.5", None, "R_X86_64_JUMP_SLOT", "JUMP_SLOT",
                   value, "resolved", "puts in libc.so.6", "puts", "libc.so.6", False, False, 0x1036)


def test_words_of_memory_are_hex_strings_like_addresses():
    row = to_jsonable(_row(), True)
    assert (row["address"], row["value"], row["file_value"]) == ("0x555555558000", "0x7ffff7e4a980", "0x1036")
    obj = to_jsonable(ObjectSummary(PATH, 0x555555554000, "lazy", "", "PIE executable", True,
                                    [0x555555557dd0, 0x555555558000], 1, True, "x86_64"), True)
    assert obj["bias"] == "0x555555554000" and obj["relro_range"] == ["0x555555557dd0", "0x555555558000"]
    assert obj["slot_count"] == 1 and obj["namespace"] == 0                  # counts stay numbers
    here = Location(0x555555555191, "main", 49, "hello_calls.c", 13, "hello calls")
    walk = WalkReport("puts@GLIBC_2.2.5", "hello calls", "live", "x86_64", "lazy", 0x555555558000, "JUMP_SLOT",
                      "R_X86_64_JUMP_SLOT", "unresolved", 0x555555555036, "lazy stub .plt+0x16",
                      hops=[Hop("call site", 0x555555555191, here, ".text", [], "", where="main+49")],
                      live=LiveWrite(here, [here], 0x555555555036, 0x7ffff7e4a980, "puts in libc.so.6", 1))
    doc = to_jsonable(walk, True)
    assert doc["value"] == "0x555555555036" and "slot_type" not in doc
    assert (doc["kind"], doc["reloc_type"]) == ("JUMP_SLOT", "R_X86_64_JUMP_SLOT")
    assert doc["hops"][0] == {"step": "call site", "address": "0x555555555191",
                              "location": {"address": "0x555555555191", "symbol": "main", "offset": 49,
                                           "file": "hello_calls.c", "line": 13, "object": "hello calls"},
                              "section": ".text", "code": [], "note": ""}
    assert (doc["live"]["old"], doc["live"]["new"]) == ("0x555555555036", "0x7ffff7e4a980")
    assert to_jsonable(_row(), False)["value"] == 0x7ffff7e4a980       # the Python API keeps ints


def test_diff_reads_a_version_1_report_beside_a_version_2_one():
    """A report saved before schema 2 has numbers where 2 has "0x..." strings: the same
    values compare equal (no spurious change), a changed one is reported as a number."""
    v2 = {"objects": [{"path": PATH, "bias": "0x555555554000", "namespace": 0}],
          "slots": [to_jsonable(_row(), True), dict(to_jsonable(_row(), True), address="0x555555558008",
                                                   symbol="memcpy", value="0x555555555046")]}
    v1 = json.loads(json.dumps(v2))
    v1["objects"][0]["bias"] = 0x555555554000
    v1["slots"][0]["value"] = 0x7ffff7e4a980
    v1["slots"][1]["value"] = 0x555555555046 - 1
    d = diff_reports(v1, v2, "saved", "now")
    assert d.unchanged == 1 and [c.symbol for c in d.changes] == ["memcpy"]
    assert (d.changes[0].value_before, d.changes[0].value_after) == (0x555555555045, 0x555555555046)
    assert to_jsonable(d, True)["changes"][0]["value_after"] == "0x555555555046"


def test_diff_across_load_addresses_ignores_the_asides_newer_reports_write():
    """Load addresses differ (a core against the live process, another run): slots are
    compared by target.  A report saved before targets said '(chosen by ifunc memcpy)' or
    '(LD_PRELOAD)' is no different for that; another implementation is."""
    new = {"objects": [{"path": PATH, "bias": "0x555555554000", "namespace": 0}],
           "slots": [dict(to_jsonable(_row(), True), value="0x7ffff7f21a80", state="resolved",
                          target="__memcpy_avx_unaligned_erms in libc.so.6 (chosen by ifunc memcpy)"),
                     dict(to_jsonable(_row(), True), address="0x555555558008", value="0x7ffff7fbc0f9",
                          state="resolved", target="puts in libpre.so (LD_PRELOAD)")]}
    old = json.loads(json.dumps(new))
    old["objects"][0]["bias"] = "0x565656554000"
    for r, a in zip(old["slots"], ("0x565656558000", "0x565656558008")):
        r["address"] = a
    old["slots"][0]["target"] = "__memcpy_avx_unaligned_erms in libc.so.6"
    old["slots"][1]["target"] = "puts in libpre.so"
    d = diff_reports(old, new, "saved", "now")
    assert d.unchanged == 2 and d.changes == []
    old["slots"][0]["target"] = "__memcpy_evex_unaligned_erms in libc.so.6"
    d = diff_reports(old, new, "saved", "now")
    assert d.unchanged == 1 and [c.after for c in d.changes] == [
        "resolved: __memcpy_avx_unaligned_erms in libc.so.6 (chosen by ifunc memcpy)"]
