"""The JSON contract's envelope: every ``--json`` document is one of these.  Pure.

    {"command": "got", "schema_version": 6, "toolkit_version": "0.1.0",
     "ok": true, "result": {...}, "error": null}

On failure ``ok`` is false, ``result`` null and ``error`` says why (the gdb
error is still raised, so ``gdb -batch`` exits non-zero and stderr has the
one-line message).  See docs/json.md and gdb_toolkit/schemas/.
"""

#: bumped only for incompatible changes (a key removed, renamed or re-typed);
#: new keys keep the version (consumers must ignore keys they do not know)
SCHEMA_VERSION = 6

#: error kinds
USAGE, FAILED, MEMORY, GDB, INTERNAL, INTERRUPTED = (
    "usage", "failed", "memory", "gdb", "internal", "interrupted")


def _version() -> str:
    from gdb_toolkit import __version__

    return __version__


def ok(command: str, result) -> dict:
    return {"command": command, "schema_version": SCHEMA_VERSION, "toolkit_version": _version(),
            "ok": True, "result": result, "error": None}


def error(command: str, kind: str, message: str, cause: str | None = None,
          fix: str | None = None, usage: str | None = None) -> dict:
    err = {"kind": kind, "message": message, "cause": cause or message, "fix": fix}
    if usage:
        err["usage"] = usage
    return {"command": command, "schema_version": SCHEMA_VERSION, "toolkit_version": _version(),
            "ok": False, "result": None, "error": err}


def is_envelope(doc) -> bool:
    return isinstance(doc, dict) and "schema_version" in doc and "command" in doc and "ok" in doc
