"""Docs drift on the kernel pages (issue 14): their transcripts are real gdb runs on Debian's
x86_64 kernel in the QEMU test guest (docs/guest.md; recipes in
tests/support/kernel_transcripts.py), so they are checked here, inside the guest boot the other
guest tests share.  A change of a kernel command's output fails until
`scripts/docs_transcripts.py --update` (which boots the guest once) regenerates them.
"""
import pytest

from tests.support import transcripts as T

pytestmark = pytest.mark.guest

#: every generated region of a guest recipe (a page may show one recipe twice)
REGIONS = [(p, name) for p in T.doc_files() for kind, name, _, _ in T.regions(p)
           if kind == "transcript" and name in T.RECIPES and T.RECIPES[name].guest]


@pytest.fixture(scope="module")
def fresh():
    """Each recipe run once (its probes set up once for all: the kernel scene)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = T.run(T.RECIPES[name])
        return cache[name]
    try:
        yield get
    finally:
        T.close_scenes()


@pytest.mark.parametrize("path,name", REGIONS, ids=[f"{p.name}:{n}" for p, n in REGIONS])
def test_guest_transcript_matches(path, name, fresh):
    body = next(b for k, n, b, _ in T.regions(path) if (k, n) == ("transcript", name))
    recipe = T.RECIPES[name]
    doc = T.unfence(body)
    for c in recipe.commands:
        assert T.shown(c).search(doc), f"missing command line '(gdb) {c}'"
    now = fresh(name)
    assert "Traceback" not in now, now
    assert T.normalize(doc, recipe) == T.normalize(now, recipe), \
        f"{path.name}: transcript {name} drifted; run scripts/docs_transcripts.py --update"
