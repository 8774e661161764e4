"""gdb file-name quoting (common.gdb_quoting): whatever the name, the quoted word is one line,
cannot end in whitespace, and splits back (libiberty buildargv's rules, re-implemented from its
documented behaviour) into exactly the absolute path."""
from gdb_toolkit.common import gdb_quoting
from gdb_toolkit.common.names import decode_name

MAX_LEN = 512
DICT = [b"\n", b"\\", b"'", b'"', b" ", b"$(", b"`", b";", b"-", b"~", b"\xe9", b"\t", b"#"]


def buildargv(text: str) -> list[str]:
    """libiberty's buildargv: whitespace splits; '' and "" group; backslash escapes anything."""
    argv, cur, have, sq, dq, bs = [], [], False, False, False, False
    for ch in text:
        if bs:
            cur.append(ch); bs = False; have = True
        elif ch == "\\":
            bs = True; have = True
        elif sq:
            if ch == "'": sq = False
            else: cur.append(ch)
        elif dq:
            if ch == '"': dq = False
            else: cur.append(ch)
        elif ch in " \t\n\r\v\f":
            if have or cur:
                argv.append("".join(cur)); cur = []; have = False
        elif ch == "'":
            sq = True; have = True
        elif ch == '"':
            dq = True; have = True
        else:
            cur.append(ch); have = True
    if have or cur:
        argv.append("".join(cur))
    return argv


def fuzz(data: bytes) -> None:
    path = "/" + decode_name(data)
    if gdb_quoting.command_text_problem(path) is None:
        gdb_quoting.check_command_text(path)
    if not gdb_quoting.can_quote_filename(path):
        return
    word = gdb_quoting.quote_filename(path)
    assert gdb_quoting.command_text_problem(word) is None
    assert word == word.rstrip()          # gdb strips trailing whitespace of a command line
    assert buildargv("file " + word) == ["file", path], (word, path)
