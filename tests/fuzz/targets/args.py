"""common.args.ArgParser (every command's argument parser) on arbitrary argv: bad input is a
UsageError (a ToolkitError carrying the usage line), --help is HelpRequested, never SystemExit,
OverflowError or a traceback.  Where the parser answers without argparse (flags, options with
a separate value, words for optional positionals, a last '*' positional), its answer must be
argparse's own."""
from gdb_toolkit.common.args import ArgParser, HelpRequested, parse_int
from gdb_toolkit.common.errors import UsageError

MAX_LEN = 512
ALLOWED = (HelpRequested,)
DICT = [b"--count", b"--json", b"--help", b"-n", b"0x", b"k", b"G", b"1e9", b"--", b"=", b"\x00",
        b"--all-objects", b"--audit", b"--diff", b"--object", b"--top", b"full", b"summary", b"-h",
        b"--main", b"--stdout", b"--timeout", b"--size", b"--mode", b"--args"]


def _parser() -> ArgParser:
    p = ArgParser("fuzzcmd", "a command")
    p.add_argument("where", help="symbol or address")
    p.add_argument("count", nargs="?", type=parse_int, default=16)
    p.add_argument("-n", "--number", type=int, default=6)
    p.add_argument("--size", type=parse_int)
    p.add_argument("--mode", choices=["full", "summary"])
    p.add_argument("--args", action="append", default=[])
    return p


def _flags_parser() -> ArgParser:
    """The shape most commands have (got, plt, vg-leaks): optional words, flags, options."""
    p = ArgParser("flagcmd", "flags and optional words")
    p.add_argument("regex", nargs="?")
    p.add_argument("mode", nargs="?", choices=["full", "summary"])
    p.add_argument("--all-objects", action="store_true")
    p.add_argument("--object", metavar="PATH")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--audit", action="store_true")
    g.add_argument("--diff", action="store_true")
    p.add_argument("--top", type=parse_int)
    return p


def _word_parser() -> ArgParser:
    """plt-walk's and vg-who's shape: a required word, then optional ones."""
    p = ArgParser("wordcmd", "a required word")
    p.add_argument("symbol")
    p.add_argument("count", nargs="?", type=parse_int)
    p.add_argument("mode", nargs="?", choices=["full", "summary"], default="full")
    p.add_argument("--live", action="store_true")
    return p


def _rest_parser() -> ArgParser:
    """vg-start's shape: options with values, a required word, then any number of words."""
    p = ArgParser("restcmd", "a program and its arguments")
    p.add_argument("--main", action="store_true")
    p.add_argument("--stdout")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("program")
    p.add_argument("args", nargs="*", default=[])
    p.add_argument("extra", nargs="*")        # a second '*': argparse's alone
    return p


def _rest_none_parser() -> ArgParser:
    p = ArgParser("restnone", "words, default None")
    p.add_argument("--object", metavar="PATH")
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("rest", nargs="*")
    return p


PARSER = _parser()
REST = _rest_parser()
REST_NONE = _rest_none_parser()
FLAGS = _flags_parser()
WORDS = _word_parser()


def _outcome(parse, argv):
    try:
        return ("ok", vars(parse(argv)))
    except UsageError as exc:
        return ("usage", str(exc))
    except HelpRequested as exc:
        return ("help", exc.text)


def fuzz(data: bytes) -> None:
    argv = data.decode("utf-8", "surrogateescape").split("\x00")
    for parser in (PARSER, FLAGS, WORDS, REST, REST_NONE):
        fast = parser._parse_fast(argv)
        if fast is not None:
            assert _outcome(parser.argparse_parser().parse, argv) == ("ok", vars(fast)), argv
    ns = PARSER.parse(argv)
    assert isinstance(ns.count, int) and isinstance(ns.number, int)
    FLAGS.parse(argv)
    WORDS.parse(argv)
    REST_NONE.parse(argv)
