"""Docs drift (issue 14): every generated region of the docs -- command headers from the
metadata, transcripts from real gdb runs -- is regenerated and compared, so a change of a
command's output or metadata fails here until `scripts/docs_transcripts.py --update` is run.

Every transcript in the docs is such a region (test_pending_pages_only_shrink: a hand-written
"(gdb) ..." block fails).  The kernel pages' recipes run in the QEMU test guest and are checked
there (test_docs_transcripts_guest.py).
"""
import re

import pytest

from tests.support import transcripts as T
from tests.support.gdbrun import REPO, gdb_json

pytestmark = pytest.mark.gdb

#: pages with hand-written transcripts ("(gdb) ..." in a fenced block outside a generated region):
#: none left (issue 14); a page may come back here only with a reason a recipe cannot show it
PENDING_PAGES: set[str] = set()

#: the regions checked here; guest recipes' (the kernel pages) are checked in the QEMU guest
#: by test_docs_transcripts_guest.py
REGIONS = [(p, kind, name) for p in T.doc_files() for kind, name, _, _ in T.regions(p)
           if not (kind == "transcript" and name in T.RECIPES and T.RECIPES[name].guest)]


@pytest.fixture(scope="module")
def commands():
    return {c["name"]: c for c in gdb_json([], "toolkit commands")["commands"]}


def test_the_pages_named_by_the_issue_are_generated():
    names = {(p.name, name) for p, _, name in REGIONS}
    assert ("toolkit.md", "toolkit-doctor") in names and ("toolkit.md", "toolkit commands") in names
    assert ("stack-diagnose.md", "stack-teststack") in names


@pytest.mark.parametrize("path,kind,name", REGIONS,
                         ids=[f"{p.name}:{n}" for p, _, n in REGIONS])
def test_generated_region_matches(path, kind, name, commands):
    body = next(b for k, n, b, _ in T.regions(path) if (k, n) == (kind, name))
    if kind.startswith("header"):
        assert name in commands, f"{name}: no such command"
        want = T.header(commands[name], 2 if kind == "header2" else 1)
        assert body.strip() == want.strip(), "run scripts/docs_transcripts.py --update"
        return
    assert name in T.RECIPES, f"{name}: no recipe in tests/support/transcripts.py"
    recipe = T.RECIPES[name]
    now = T.run(recipe)
    doc = T.unfence(body)
    # every command shown is in the block with its "(gdb) " line (stack-diagnose.md lost one)
    for c in recipe.commands:
        assert T.shown(c).search(doc), f"missing command line '(gdb) {c}'"
    assert T.normalize(doc, recipe) == T.normalize(now, recipe), \
        f"{path.name}: transcript {name} drifted; run scripts/docs_transcripts.py --update"


def test_every_guest_region_is_checked_in_the_guest():
    """A guest recipe's region is left out here only because the guest test checks it."""
    from tests.integration import test_docs_transcripts_guest as G

    guest = {(p, n) for p in T.doc_files() for k, n, _, _ in T.regions(p)
             if k == "transcript" and n in T.RECIPES and T.RECIPES[n].guest}
    assert guest == set(G.REGIONS)
    assert {(p, n) for p, k, n in REGIONS if k == "transcript"}.isdisjoint(guest)
    assert G.pytestmark.name == "guest"


def test_pending_pages_only_shrink():
    fence = re.compile(r"```\n(.*?)```", re.S)
    hand_written = set()
    for p in T.doc_files():
        text = T.REGION.sub("", p.read_text())
        if any(ln.startswith(("(gdb) ", "$ gdb ")) for b in fence.findall(text) for ln in b.splitlines()):
            hand_written.add(str(p.relative_to(REPO)))
    new = hand_written - PENDING_PAGES
    assert not new, f"hand-written transcripts in {sorted(new)}: make them generated regions"
    done = PENDING_PAGES - hand_written
    assert not done, f"{sorted(done)} have no hand-written transcript left: drop from PENDING_PAGES"


def test_a_pid_of_another_length_does_not_drift_but_a_changed_word_does():
    """CI's pids had another number of digits than this machine's: the prose around them
    wrapped at another word and the transcript 'drifted' with nothing changed."""
    recipe = T.Recipe(["stack-diagnose"])
    here = "thread 3 (LWP 4011067) overflowed its\n  256.0 KiB stack"
    ci = "thread 3 (LWP 812) overflowed its 256.0\n  KiB stack"
    assert T.normalize(here, recipe) == T.normalize(ci, recipe)
    assert T.normalize(here, recipe) != T.normalize(ci.replace("its", "the"), recipe)
    table = "a    b\n---  ---\n1    2"         # no pid: the layout still counts
    assert T.normalize(table, recipe) != T.normalize(table.replace("1    2", "1 2"), recipe)


def test_a_table_cell_wrapping_at_another_word_does_not_drift():
    """This VM's CPU changed between sessions: glibc's ifunc picked __memcpy_avx512_unaligned_erms
    instead of __memcpy_avx_unaligned_erms (masked as __IMPL), and got's target cell wrapped
    "(chosen by ifunc memcpy)" at another word, before the next column's verdict instead of
    after it.  Read whole, the row is the same: no drift.  Anything else that changes still
    drifts -- a word, a verdict, the order of rows, cells or values (cases a review found a
    sorting normalizer let through)."""
    recipe = T.Recipe(["got --audit"], loose=True, mask=[(r"__\w+?_(evex|avx|sse|erms)\w*", "__IMPL")])
    cell = " " * len("0x8008  memcpy@GLIBC_2.14  resolved    ")      # where the target cell starts
    docs = ("0x8008  memcpy@GLIBC_2.14  resolved    __memcpy_avx_unaligned_erms in libc.so.6 (chosen  ok\n"
            f"{cell}by ifunc memcpy)\n"
            "0x8010  atoi@GLIBC_2.2.5   unresolved  lazy stub .plt+0x36                              lazy\n")
    here = ("0x8008  memcpy@GLIBC_2.14  resolved    __memcpy_avx512_unaligned_erms in libc.so.6  ok\n"
            f"{cell}(chosen by ifunc memcpy)\n"
            "0x8010  atoi@GLIBC_2.2.5   unresolved  lazy stub .plt+0x36                          lazy\n")
    norm = T.normalize(docs, recipe)
    assert norm == T.normalize(here, recipe)
    assert "(chosen by ifunc memcpy) ok" in norm
    assert norm != T.normalize(here.replace("  ok", "  redirected"), recipe)
    assert norm != T.normalize(here.replace("ifunc memcpy", "ifunc memmove"), recipe)
    rows = here.splitlines(keepends=True)
    assert norm != T.normalize(rows[2] + rows[0] + rows[1], recipe)
    assert norm != T.normalize(here.replace("resolved    __", "__").replace("libc.so.6  ok", "libc.so.6  resolved  ok"),
                               recipe)
    # prose keeps its word order whether it is one line or wrapped under a hanging indent,
    # and a wrap falling on a double space changes nothing
    one = "the slot is already resolved; ld.so will not write it again.  Fix: restart the program.\n"
    wrapped = "the slot is already resolved; ld.so will not write it again.\n  Fix: restart the\n  program.\n"
    assert T.normalize(one, recipe) == T.normalize(wrapped, recipe)
    assert T.normalize(one, recipe) != T.normalize(one.replace("restart the", "the restart"), recipe)
    # values under a heading, rows under a rule, a listing: order still counts
    kv = "process:\n  pid:      123\n  ppid:     1\n"
    assert T.normalize(kv, recipe) != T.normalize(kv.replace("123", "1_").replace("     1\n", "     123\n")
                                                   .replace("1_", "1"), recipe)
    table = ("kind  where\n---   ---\n  7  reachable  memleak5  memleakloop.c:30\n"
             "  4  definite   memleak4  memleakloop.c:29\n")
    swapped = table.replace("memleakloop.c:30", "X").replace("memleakloop.c:29", "memleakloop.c:30") \
        .replace("X", "memleakloop.c:29")
    assert T.normalize(table, recipe) != T.normalize(swapped, recipe)
    listing = "stub:\n  0x1056:  push  2\n  0x105b:  jmp   0x1020\n"
    assert T.normalize(listing, recipe) != T.normalize(
        listing.replace("push  2", "P").replace("jmp   0x1020", "push  2").replace("P", "jmp   0x1020"), recipe)
