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
#: the shell gdb starts transcript programs with (Debian's /bin/sh: dash, which exports PWD only)
INFERIOR_SHELL = "/bin/sh"

#: always masked: what differs between two runs of the same thing on the same machine
VOLATILE = [
    (r"\b(LWP|process|pid|Process|pids?) \d+", r"\1 N"),
    (r"/proc/\d+/", "/proc/N/"),
    (r"\b\d+\.\d+ s\b", "N s"),
    (r"\bin \d+\.\d+ ?s\b", "in N s"),
]
#: masked after the recipe's own masks (which may name addresses more precisely: 0xADDR,
#: 0xLIBADDR, the KASLR offset): where the loader, the kernel or valgrind put a mapping -- a
#: libc or kernel update moves every address after it.  Digit for digit, so a re-aligned
#: column still drifts.
ADDRESSES = [(r"\b0x[0-9a-f]{6,}\b", lambda m: "0x" + "X" * (len(m.group()) - 2))]
#: this machine's facts, for transcripts of the doctor and of kernel-facing commands
HOST = [
    (r"\b\d+\.\d+\.\d+-[\w.+-]+", "RELEASE"),                # kernel releases
    (r"\b\d+\.\d+(\.\d+)*\b", "V"),                          # versions
    (r"(?m)^(bcc compile\s+)\S+", r"\1STATUS"),
]

#: ktrace/ktypes on this machine: kernel addresses, event times, comms and pids of other
#: processes, the kernel's build id, build-or-cached
KTRACE = HOST + [
    (r"0xffff[0-9a-f]{12}", "0xffffADDR"),
    (r"\+\d+\.\d+ms", "+Tms"),
    (r"(?m)^(\+Tms\s+)\S+\s+\d+\s+\d+\s+\S+", r"\1PID TID COMM"),
    (r"(?m)^(\+Tms\s+)\d+\s+\d+", r"\1PID TID"),
    (r"\b[0-9a-f]{40}\b", "BUILDID"),
    (r"\((built|cached) in", "(built-or-cached in"),
    (r"\b(pid|tid):(\s+)\d+", r"\1:\2N"),
    (r"(?m)^(comm:\s+)(?!mmap_file)\S+", r"\1COMM"),
    (r"\bargv=0x7ff[0-9a-f]+", "argv=0xSTACK"),     # main's argv: moves with the environment's size
    (r"-{3,}", "---"),                  # table rules: the pid/tid columns are as wide as the pids
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
    #: (tmp dir) -> the program, for programs gcc does not build (Go, a cross compiler)
    builder: object = None
    #: (tmp dir, program) -> a core file: the commands then run on ``gdb PROGRAM CORE``
    core_by: object = None
    #: the gdb to run (gdb-multiarch for another architecture's core)
    gdb: str | None = None
    #: a shell line shown first as "$ LINE" (how the program or core was made)
    shell: str | None = None
    #: extra -iex commands (not shown)
    pre: list = field(default_factory=list)
    #: runs only in the QEMU test guest (docs/guest.md): checked by
    #: tests/integration/test_docs_transcripts_guest.py, regenerated through one guest boot
    guest: bool = False
    #: a context manager class set up once per process for every recipe naming it (the
    #: kernel's probes) and left in place until close_scenes()
    scene: object = None
    #: (tmp dir) -> None before gdb starts; () -> None after it ended (even on failure)
    prepare: object = None
    cleanup: object = None
    #: (recipe, tmp dir) -> the transcript, for output that is not one local gdb's (the host's
    #: gdb on the guest's gdbstub)
    runner: object = None
    #: gdb's environment on top of this process's ("{tmp}" and prepare()'s values allowed)
    env: dict = field(default_factory=dict)
    #: the private dir's path as long as /tmp/doc (/tmp/XYZ), so that the tables that show it
    #: stay aligned once it is replaced (vg-attach's process list)
    doc_length_tmp: bool = False


# -- valgrind (docs/valgrind.md, docs/commands/vg-*.md) ---------------------------------------
#: run in the built program's directory, so that commands say ./memleakloop
_VG_CD = "python import os; os.chdir(os.path.dirname(gdb.current_progspace().filename))"
_VG_MASK = [(r"/tmp/gdb_toolkit-vg-\w+", "/tmp/gdb_toolkit-vg-X"), (r"(pid:\s+)\d+", r"\1N"),
            (r"(valgrind pid:\s+)\d+", r"\1N"), (r"valgrind-\d+\.log", "valgrind-N.log"),
            # the client's stack holds its environment, which differs between two shells
            (r"0x1fff[0-9a-f]{6}\b", "0xSTACK")]


def _vg_quiet(*commands: str) -> str:
    """Hidden set-up commands whose output is not part of the transcript."""
    body = ["set suppress-cli-notifications on", *commands, "set suppress-cli-notifications off"]
    return "python " + "; ".join(f"gdb.execute({c!r}, to_string=True)" for c in body)


VALGRIND_RECIPES = {
    "vg-start": Recipe(["vg-start --stdin requests.fifo ./memleakloop", "vg-start ./memleakloop -- --vgdb=no",
                        "vg-start ./memleakloop -- --tool=helgrind", "vg-start /tmp/nothere",
                        "vg-start --main --stdout memleakloop.out ./memleakloop 3"],
                       source="examples/valgrind/memleakloop.c",
                       setup=[_VG_CD, "shell mkfifo requests.fifo"], width=100, mask=_VG_MASK),
    "vg-memcorrupt": Recipe(["vg-start --stdout memcorrupt.out ./memcorrupt", "continue", "vg-errors"],
                            source="examples/valgrind/memcorrupt.c", setup=[_VG_CD], width=100,
                            mask=_VG_MASK),
    "vg-leaks-errors": Recipe(["vg-leaks --kinds bogus", "vg-leaks --plot x.svg",
                               "vg-leaks --history --plot leaks.gif", "monitor v.set log_output",
                               "vg-leaks summary"],
                              source="examples/valgrind/memleakloop.c",
                              setup=[_VG_CD, _vg_quiet("vg-start --main --stdout /dev/null ./memleakloop 3")],
                              width=100, mask=_VG_MASK),
    "vg-watch": Recipe(["vg-watch 1 --count 4"], source="examples/valgrind/memleakloop.c",
                       setup=[_VG_CD, _vg_quiet("vg-start --main --stdout /dev/null ./memleakloop")],
                       width=100, timeout=120,
                       # a snapshot line (and its wrapped continuation) holds this run's sizes
                       mask=_VG_MASK + [(r"(?m)^(vg-watch: snapshot \d+ at )\S+: .*(\n    \S.*)*$", r"\1T: ..."),
                                        (r"(?m)^(reachable|definite) .*$", "ROW"),
                                        (r"over \d+\.\d s", "over N s"),
                                        (r"valgrind \d+;", "valgrind N;"),
                                        (r"note: gdb connected again;[^\n]*(\n      [^\n]*)*", "NOTE")]),
    "vg-leaks-rounds": Recipe(["continue", "vg-leaks", "continue", "vg-leaks --delta increased",
                               "vg-leaks --top 2", "vg-leaks --depth 2 --kinds definite"],
                              source="examples/valgrind/memleakloop.c",
                              setup=[_VG_CD, _vg_quiet("vg-start --main --stdout /dev/null ./memleakloop 8"),
                                     "break checkpoint"], width=100, mask=_VG_MASK),
    "vg-leaks-history": Recipe(["vg-leaks --history", "vg-leaks --history --kinds definite --export leaks.csv"],
                               source="examples/valgrind/memleakloop.c",
                               setup=[_VG_CD, _vg_quiet("vg-start --main --stdout /dev/null ./memleakloop 8",
                                                        "break checkpoint",
                                                        *(["continue", "vg-leaks"] * 5))],
                               width=100, mask=_VG_MASK + [(r"over \d+\.\d s", "over N s"),
                                                           (r"[+-][\d,]+\.\d\b", "+N.N")]),
    "vg-sites-errors": Recipe(["continue", "continue", "vg-errors", "continue", "continue", "vg-errors"],
                              source="examples/valgrind/sites.c",
                              setup=[_VG_CD, _vg_quiet("vg-start --stdout /dev/null ./sites -- "
                                                       "--track-origins=yes")], width=100, mask=_VG_MASK),
    "vg-sites-leaks": Recipe(["vg-leaks", "vg-leaks --group-by 2 --kinds indirect", "vg-block 4",
                              "vg-who &g_global", "vg-check main 4"],
                             source="examples/valgrind/sites.c",
                             setup=[_VG_CD, _vg_quiet("vg-start --stdout /dev/null ./sites -- "
                                                      "--vgdb-error=100", "break sites.c:27", "continue")],
                             width=100, mask=_VG_MASK),
    "vg-vbits": Recipe(["vg-vbits g_buf 24", "vg-vbits g_buf+56 16", "vg-vbits nosuch 4"],
                       source="examples/valgrind/vbits.c",
                       setup=[_VG_CD, _vg_quiet("vg-start --main --stdout /dev/null ./vbits",
                                                "break checkpoint", "continue")], width=100, mask=_VG_MASK),
    "vg-check": Recipe(["vg-check g_buf 64 defined", "vg-check g_buf 10 defined", "vg-check g_buf 70",
                        "vg-check &g_static sizeof(g_static) defined", "vg-check main 4", "vg-check g_buf 0"],
                       source="examples/valgrind/vbits.c",
                       setup=[_VG_CD, _vg_quiet("vg-start --main --stdout /dev/null ./vbits",
                                                "break checkpoint", "continue")], width=100, mask=_VG_MASK),
    "vg-who": Recipe(["vg-who g_buf", "vg-who g_buf 64", "vg-who &g_static"],
                     source="examples/valgrind/vbits.c",
                     setup=[_VG_CD, _vg_quiet("vg-start --main --stdout /dev/null ./vbits",
                                              "break checkpoint", "continue")], width=100, mask=_VG_MASK),
    "vg-block": Recipe(["vg-leaks --kinds reachable", "vg-block g_psz1[1]", "vg-block 3", "vg-block 99",
                        "vg-block &g_round"],
                       source="examples/valgrind/memleakloop.c",
                       setup=[_VG_CD, _vg_quiet("vg-start --main --stdout /dev/null ./memleakloop 8",
                                                "break checkpoint", "continue", "continue")],
                       width=100, mask=_VG_MASK),
}

RECIPES = {
    "toolkit-doctor": Recipe(["toolkit doctor --quick"], width=100, mask=HOST, loose=True),
    "toolkit-commands": Recipe(["toolkit commands"], width=80),
    "toolkit-doctor-bogus": Recipe(["toolkit doctor --bogus"], width=80),
    # ktrace on this machine's kernel (tracepoints: the same on any kernel with BPF); the task,
    # times and the kernel's build id vary between runs
    "ktrace-tracepoint": Recipe(
        ["ktrace tracepoint:syscalls:sys_enter_mmap --args len --capture signal->rlim[3].rlim_cur "
         "--ret --run", "p $ktask", "ktrace tracepoint:syscalls:sys_enter_exit_group --args error_code --run",
         "ktask $ktask comm"],
        source="examples/ktrace/mmap_file.c", setup=["break after_mmap", "start > /dev/null"],
        width=100, mask=KTRACE, loose=True),
    "ktypes-host": Recipe(["ktypes", "p sizeof(struct task_struct) > 0", "p (struct task_struct *)0",
                           "info symbol 0"], width=100, mask=KTRACE, loose=True, timeout=600),
    "stack-teststack": Recipe(["run 1920 1080", "stack-diagnose"], source="examples/stack/teststack.c",
                              width=100),
    # plt: the ifunc implementation glibc picks depends on the CPU (__strcmp_evex / _avx2 ...)
    "plt-audit-hijack": Recipe(["break checkpoint", "run", "got --audit"], source="examples/plt/got_hijack.c",
                               flags=["-Wl,-z,lazy"], width=132, loose=True,
                               mask=[(r"__\w+?_(evex|avx|sse|erms)\w*", "__IMPL"),
                                     (r"0x7ffff7[0-9a-f]{6}", "0xLIBADDR")]),
    **VALGRIND_RECIPES,
}


def _domain_recipes() -> None:
    """Recipes a domain keeps in its own module (tests/support/<domain>_transcripts.py)."""
    from tests.support.kernel_transcripts import recipes as kernel_recipes
    from tests.support.plt_transcripts import recipes as plt_recipes
    from tests.support.stack_transcripts import recipes as stack_recipes
    from tests.support.valgrind_transcripts import recipes as valgrind_recipes

    RECIPES.update(stack_recipes(Recipe))
    RECIPES.update(plt_recipes(Recipe))
    RECIPES.update(kernel_recipes(Recipe))
    RECIPES.update(valgrind_recipes(Recipe))


_SCENES: dict = {}


def enter_scene(recipe: Recipe) -> None:
    if recipe.scene is not None and recipe.scene not in _SCENES:
        _SCENES[recipe.scene] = recipe.scene().__enter__()


def close_scenes() -> None:
    while _SCENES:
        _, scene = _SCENES.popitem()
        scene.__exit__(None, None, None)


def in_guest() -> bool:
    return os.environ.get("GDB_TOOLKIT_IN_GUEST") == "1"


def _doc_length_dir() -> Path:
    """A new private dir /tmp/XYZ: as many characters as DOC_TMP."""
    import secrets
    import string
    chars = string.ascii_lowercase + string.digits
    for _ in range(1000):
        path = Path("/tmp", "".join(secrets.choice(chars) for _ in range(len(DOC_TMP) - len("/tmp/"))))
        try:
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            continue
    raise RuntimeError("no free /tmp/XYZ directory")


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
    # The program's path (argv[0], AT_EXECFN) and its working directory (the PWD the shell that
    # starts it exports) lie on its initial stack, so their lengths move every stack address a
    # transcript shows: both live in a fresh private dir whose path has a fixed length wherever
    # the checkout is and whatever $TMPDIR says (/tmp/gtk-doc-XXXXXXXX).
    if recipe.guest and not in_guest():
        raise RuntimeError("a guest recipe runs in the QEMU test guest only (docs/guest.md)")
    enter_scene(recipe)
    tmp = _doc_length_dir() if recipe.doc_length_tmp else Path(tempfile.mkdtemp(prefix="gtk-doc-", dir="/tmp"))
    try:
        # "{tmp}" (the private dir) and what prepare() returns ("{pid1}") in commands, args...
        values = {"tmp": str(tmp)}
        if recipe.prepare:
            values.update(recipe.prepare(tmp) or {})

        def sub(text: str) -> str:
            for key, value in values.items():
                text = text.replace("{" + key + "}", str(value))
            return text
        if recipe.runner:
            text = recipe.runner(recipe, tmp).replace(str(tmp), DOC_TMP)
            return "\n".join(ln.rstrip() for ln in text.splitlines()) + "\n"
        binary = recipe.builder(tmp) if recipe.builder else build(recipe, tmp)
        core = recipe.core_by(tmp, binary) if recipe.core_by else None
        # the inferior gets a fixed environment: the stack's addresses depend on its size
        argv = [shutil.which(recipe.gdb) if recipe.gdb else GDB, "-nx", "-batch",
                *sum((["-iex", sub(c)] for c in recipe.pre), []), "-iex", "set debuginfod enabled off",
                "-iex", f"set width {recipe.width}", "-iex", "set height 0",
                "-iex", "unset environment", "-iex", "set environment LANG=C.UTF-8",
                "-iex", f"set cwd {tmp}",
                "-ex", f"source {GDBINIT}", *sum((["-ex", sub(c)] for c in recipe.setup), [])]
        for c in map(sub, recipe.commands):
            argv += ["-ex", f"echo (gdb) {c}\\n".replace("\\\\n", "\\n"), "-ex", c]
        if binary is not None:
            argv += ["--args", str(binary), *map(sub, recipe.args)] if recipe.args else [str(binary)]
        if core is not None:
            argv += ["-c", str(core)]
        # gdb starts the inferior through $SHELL, which adds its own variables to that fixed
        # environment (bash: SHLVL=0 as well as PWD): always the same shell, whoever runs this.
        # The toolkit's private dirs (vg-start's logs) are shown in the default $TMPDIR, /tmp:
        # a longer one would re-wrap the lines that name them
        env = dict(os.environ, TERM="dumb", LC_ALL="C.UTF-8", SHELL=INFERIOR_SHELL, TMPDIR="/tmp")
        env.update({k: sub(v) for k, v in recipe.env.items()})
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=recipe.timeout, env=env, cwd=REPO, stdin=subprocess.DEVNULL)
        text = proc.stdout.replace(str(tmp), DOC_TMP)
        if recipe.shell:
            text = f"$ {recipe.shell}\n" + text
        return "\n".join(ln.rstrip() for ln in text.splitlines()) + "\n"
    finally:
        if recipe.cleanup:
            recipe.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def shown(command: str) -> re.Pattern:
    """The line a recipe's command is shown as: "{tmp}" is /tmp/doc, any other placeholder
    (a pid prepare() made) one word."""
    parts = re.split(r"(\{\w+\})", command)
    body = "".join(re.escape(DOC_TMP) if p == "{tmp}" else r"\S+" if re.fullmatch(r"\{\w+\}", p)
                   else re.escape(p) for p in parts)
    return re.compile(r"(?m)^\(gdb\) " + body + "$")


def normalize(text: str, recipe: Recipe) -> str:
    """The text a transcript is compared by: volatile values masked; word by word when the
    recipe says so or when it shows a pid, an LWP or a duration -- their length (a 4-digit pid
    here, a 7-digit one on CI) moves where prose wraps and how wide a column is.  Word by word,
    a wrapped table cell is read whole (_join_wrapped_cells)."""
    volatile = 0
    for pattern, repl in VOLATILE:
        text, n = re.subn(pattern, repl, text)
        volatile += n
    for pattern, repl in recipe.mask + ADDRESSES:
        text = re.sub(pattern, repl, text)
    if recipe.loose or volatile:
        # a column's rule is as wide as its widest cell, which a mask may have replaced
        return " ".join(re.sub(r"-{3,}", "---", _join_wrapped_cells(text)).split())
    return "\n".join(ln.rstrip() for ln in text.strip("\n").splitlines())


def _cells(line: str) -> list[list]:
    """[start column, text] of each cell of *line*: runs of words one space apart."""
    return [[m.start(), m.group()] for m in re.finditer(r"\S+(?: \S+)*", line)]


def _join_wrapped_cells(text: str) -> str:
    """*text* with each line that continues a table cell folded into the cell: a line indented
    deeper than the row above it whose every piece starts in the column where one of that
    row's later cells starts (the renderer wraps a cell under its own start).  Where a cell
    wraps depends on how long the other cells are: glibc's ifunc picks
    __memcpy_avx512_unaligned_erms on one CPU and __memcpy_avx_unaligned_erms on another
    (masked alike), and got's target cell wraps "(chosen by ifunc memcpy)" at another word,
    before or after the next column's verdict.  Read whole, the row says the same words in
    the same order either way.  Any other line (prose under a hanging indent, a block under
    a heading) stays where it is: word by word, its words are already in order.  Run after
    the masks (which may read a wrapped line as printed): a mask keeps the columns before
    the one it is in (addresses digit for digit), so a wrap still sits under its cell."""
    out: list[str | list] = []          # a line as printed, or the cells of a row that took a wrap
    row = None
    for line in text.splitlines():
        cells = _cells(line)
        if row is not None and cells and cells[0][0] > row[0][0]:
            later = {cell[0]: cell for cell in row[1:]}
            if all(start in later for start, _ in cells):
                for start, piece in cells:
                    later[start][1] += " " + piece
                if out[-1] is not row:
                    out[-1] = row
                continue
        row = cells or None
        out.append(line)
    return "\n".join(r if isinstance(r, str) else " " * r[0][0] + "  ".join(c[1] for c in r) for r in out)


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

    m = CommandMeta(meta_entry["name"], meta_entry["summary"], "\n".join(meta_entry["usage_lines"]),
                    "", meta_entry["examples"], meta_entry["category"], meta_entry["repeats"])
    return m.docs_header(level)


def doc_files() -> list[Path]:
    return sorted((REPO / "docs").rglob("*.md")) + [REPO / "README.md"]


_domain_recipes()
