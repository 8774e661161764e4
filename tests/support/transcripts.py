"""Generated parts of the docs: command headers (from the metadata) and transcripts (real
gdb runs).  ``scripts/docs_transcripts.py --update`` rewrites them; the test
tests/integration/test_docs_transcripts.py regenerates each and fails on drift.

In a Markdown file a generated region is::

    <!-- generated: transcript stack-teststack -->
    ```
    (gdb) run 1920 1080
    ...
    ```
    <!-- end generated -->

or ``<!-- generated: header got -->`` for a command's header (``header2``: as a second-level
heading, for a page that documents several commands).  A transcript
names a recipe of RECIPES: the program to build (from examples/), the gdb commands shown
(each printed as ``(gdb) CMD`` followed by its output, stdout and stderr in order), hidden
set-up commands, the terminal width, and what varies between runs (pids, durations, this
machine's versions), which is masked on both sides before comparing.
"""
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.gdbrun import GDB, GDBINIT, REPO

REGION = re.compile(r"(<!-- generated: (header2?|transcript) ([^>]+?) -->\n)(.*?)(<!-- end generated -->)",
                    re.S)
DOC_TMP = "/tmp/doc"

#: always masked: what differs between two runs of the same thing on the same machine
VOLATILE = [
    (r"\b(LWP|process|pid|Process|pids?) \d+", r"\1 N"),
    (r"/proc/\d+/", "/proc/N/"),
    (r"\b\d+\.\d+ s\b", "N s"),
    (r"\bin \d+\.\d+ ?s\b", "in N s"),
]
#: this machine's facts, for transcripts of the doctor and of kernel-facing commands
HOST = [
    (r"\b\d+\.\d+\.\d+-[\w.+-]+", "RELEASE"),                # kernel releases
    (r"\b\d+\.\d+(\.\d+)*\b", "V"),                          # versions
    (r"(?m)^(bcc compile\s+)\S+", r"\1STATUS"),
]


@dataclass
class Recipe:
    commands: list[str]                     # shown: "(gdb) CMD" + output
    source: str | None = None               # examples/... C file to build
    flags: list[str] = field(default_factory=lambda: ["-g", "-O0"])
    args: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)   # hidden commands run first
    width: int = 100
    mask: list = field(default_factory=list)
    timeout: int = 300
    #: compare words only (a machine's longer kernel release re-wraps a line: not drift)
    loose: bool = False


RECIPES = {
    "toolkit-doctor": Recipe(["toolkit doctor --quick"], width=100, mask=HOST, loose=True),
    "toolkit-commands": Recipe(["toolkit commands"], width=80),
    "toolkit-doctor-bogus": Recipe(["toolkit doctor --bogus"], width=80),
    "stack-teststack": Recipe(["run 1920 1080", "stack-diagnose"], source="examples/stack/teststack.c",
                              width=100),
}


def build(recipe: Recipe, out_dir: Path) -> Path | None:
    if recipe.source is None:
        return None
    src = REPO / recipe.source
    binary = out_dir / src.stem
    # debug info names the source relative to the checkout, wherever the checkout is
    subprocess.run(["gcc", *recipe.flags, f"-fdebug-prefix-map={REPO}=.", "-o", str(binary), str(src)],
                   check=True, cwd=REPO)
    return binary


def run(recipe: Recipe) -> str:
    """The transcript text the recipe produces now (without the fence)."""
    tmp = Path(tempfile.mkdtemp(prefix="gtk-doc-"))
    try:
        binary = build(recipe, tmp)
        # the inferior gets a fixed environment: the stack's addresses depend on its size
        argv = [GDB, "-nx", "-batch", "-iex", "set debuginfod enabled off",
                "-iex", f"set width {recipe.width}", "-iex", "set height 0",
                "-iex", "unset environment", "-iex", "set environment LANG=C.UTF-8",
                "-ex", f"source {GDBINIT}", *sum((["-ex", c] for c in recipe.setup), [])]
        for c in recipe.commands:
            argv += ["-ex", f"echo (gdb) {c}\\n".replace("\\\\n", "\\n"), "-ex", c]
        if binary is not None:
            argv += ["--args", str(binary), *recipe.args] if recipe.args else [str(binary)]
        env = dict(os.environ, TERM="dumb", LC_ALL="C.UTF-8")
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=recipe.timeout, env=env, cwd=REPO, stdin=subprocess.DEVNULL)
        text = proc.stdout.replace(str(tmp), DOC_TMP)
        return "\n".join(ln.rstrip() for ln in text.splitlines()) + "\n"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def normalize(text: str, recipe: Recipe) -> str:
    for pattern, repl in VOLATILE + recipe.mask:
        text = re.sub(pattern, repl, text)
    if recipe.loose:
        return " ".join(text.split())
    return "\n".join(ln.rstrip() for ln in text.strip("\n").splitlines())


def regions(path: Path):
    """(kind, name, body, match) for each generated region of a Markdown file."""
    text = path.read_text()
    for m in REGION.finditer(text):
        yield m.group(2), m.group(3).strip(), m.group(4), m


def fenced(text: str) -> str:
    return "```\n" + text.rstrip("\n") + "\n```\n"


def unfence(body: str) -> str:
    body = body.strip("\n")
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
    if body.endswith("```"):
        body = body[: -3]
    return body


def header(meta_entry: dict, level: int = 1) -> str:
    """A command's docs header from its ``toolkit commands --json`` entry."""
    from gdb_toolkit.common.meta import CommandMeta

    m = CommandMeta(meta_entry["name"], meta_entry["summary"], "\n".join(meta_entry["usage"]),
                    "", meta_entry["examples"], meta_entry["category"], meta_entry["repeats"])
    return m.docs_header(level)


def doc_files() -> list[Path]:
    return sorted((REPO / "docs").rglob("*.md")) + [REPO / "README.md"]
