"""common.args.ArgParser (every command's argument parser) on arbitrary argv: bad input is a
UsageError (a ToolkitError carrying the usage line), --help is HelpRequested, never SystemExit,
OverflowError or a traceback."""
from gdb_toolkit.common.args import ArgParser, HelpRequested, parse_int

MAX_LEN = 512
ALLOWED = (HelpRequested,)
DICT = [b"--count", b"--json", b"--help", b"-n", b"0x", b"k", b"G", b"1e9", b"--", b"=", b"\x00"]


def _parser() -> ArgParser:
    p = ArgParser("fuzzcmd", "a command")
    p.add_argument("where", help="symbol or address")
    p.add_argument("count", nargs="?", type=parse_int, default=16)
    p.add_argument("-n", "--number", type=int, default=6)
    p.add_argument("--size", type=parse_int)
    p.add_argument("--mode", choices=["full", "summary"])
    p.add_argument("--args", action="append", default=[])
    return p


PARSER = _parser()


def fuzz(data: bytes) -> None:
    argv = data.decode("utf-8", "surrogateescape").split("\x00")
    ns = PARSER.parse(argv)
    assert isinstance(ns.count, int) and isinstance(ns.number, int)
