"""Aborts that are about the stack but not about its growth.  Pure.

glibc's stack protector (-fstack-protector*) checks a canary below each protected frame's
saved registers on return; a write past the end of a local array overwrites it first, and
__stack_chk_fail() -> __fortify_fail("stack smashing detected") -> abort() ends the process
with SIGABRT.  _FORTIFY_SOURCE's checked string functions (__strcpy_chk, __memcpy_chk, ...)
call __chk_fail() -> __fortify_fail("buffer overflow detected") before they write.  Either
way the stack did not need to grow: what matters is the function whose buffer overflowed.
"""
import re

from gdb_toolkit.common.record import record
from gdb_toolkit.stack.model import Frame

CANARY = re.compile(r"(__GI_)*__stack_chk_fail(_local)?")
CHK_FAIL = re.compile(r"(__GI_)*__chk_fail")
MORESTACK = re.compile(r"__generic_morestack|__morestack")
LOOK = 24                    # innermost frames searched for the detector


@record
class Abort:
    kind: str                        # "canary" | "fortify" | "split-stack"
    detector: str                    # __stack_chk_fail / __chk_fail
    checker: Frame | None            # fortify: the checked function (__strcpy_chk)
    victim: Frame | None             # the function whose buffer overflowed
    junk: list[int]                  # return addresses above the victim no code owns


def _real_after(frames: list[Frame], i: int) -> tuple[int, Frame | None]:
    for j in range(i + 1, len(frames)):
        if not frames[j].virtual and not frames[j].signal_frame:
            return j, frames[j]
    return len(frames), None


def detect(frames: list[Frame]) -> Abort | None:
    from gdb_toolkit.stack.recursion import frame_label

    for i, fr in enumerate(frames[:LOOK]):
        name = frame_label(fr)
        if CANARY.fullmatch(name):
            j, victim = _real_after(frames, i)
            junk = [f.pc for f in frames[j + 1:j + 4] if f.function is None
                    and f.function_start is None]
            return Abort("canary", name, None, victim, junk)
        if MORESTACK.fullmatch(name) and any(frame_label(x) == "abort" or "abort" in frame_label(x)
                                             for x in frames[:i]):
            j = max(k for k in range(i, min(len(frames), LOOK))
                    if MORESTACK.fullmatch(frame_label(frames[k])))
            _k, victim = _real_after(frames, j)
            return Abort("split-stack", name, None, victim, [])
        if CHK_FAIL.fullmatch(name):
            j, checker = _real_after(frames, i)
            _k, victim = _real_after(frames, j)
            return Abort("fortify", name, checker, victim, [])
    return None


def _ascii(value: int) -> str:
    """Say so when the word's bytes, in memory order, begin with text (a string copied over
    the return address)."""
    raw = value.to_bytes(8, "little")
    n = 0
    while n < 8 and 32 <= raw[n] < 127:
        n += 1
    if n == 8 or (n >= 2 and raw[n] == 0):
        return f" ('{raw[:n].decode()}'{'' if n == 8 else ' and a NUL'}: text)"
    return ""


def explain(d, ab: Abort, frames: list[Frame] | None = None) -> None:
    """Fill *d* (a Diagnosis) with the verdict for *ab*."""
    from gdb_toolkit.stack.model import Fix
    from gdb_toolkit.stack.recursion import frame_label

    who = f"{frame_label(ab.victim)}()" if ab.victim else "the calling function"
    where = f" ({ab.victim.source})" if ab.victim is not None and ab.victim.source else ""
    d.cause = None
    d.culprit = None
    if ab.kind == "canary":
        d.verdict = "stack-smash"
        over = ""
        if ab.junk:
            over = (f"; the saved return address above it is gone too (the walk finds "
                    f"0x{ab.junk[0]:x}{_ascii(ab.junk[0])} there: the overflowing data)")
        d.headline = (f"stack smashing detected: {who}{where} overwrote its stack canary -- a "
                      f"write past the end of one of its local arrays{over}; {ab.detector}() "
                      "aborted the process (SIGABRT) when the function returned -- not a "
                      "stack growth problem")
        d.explanation.append(
            "-fstack-protector puts a random canary between a function's locals and its saved "
            "registers and return address and checks it on return; a buffer overflow toward "
            "higher addresses has to overwrite it first, so the check found the stack "
            "corrupted before the return could jump through it.")
        d.fix = Fix("code", f"find the write past the end of a local array in {who}{where}: "
                    "its loop bound, or a strcpy/memcpy/sprintf/read into it; "
                    "-fsanitize=address stops at that very write (and -D_FORTIFY_SOURCE=2 -O2 "
                    "checks the string functions whose buffer sizes are known)")
        return
    if ab.kind == "split-stack":
        from gdb_toolkit.stack.recursion import find_cycle

        d.verdict = "stack-other"
        rep = find_cycle(frames or [])
        again = (f"; {who} repeats in the sampled frames: a recursion on split stacks"
                 if rep is not None and ab.victim is not None else "")
        d.headline = (f"a -fsplit-stack program ran out of memory for its stack: "
                      f"{ab.detector}() could not allocate the next stack segment for {who}"
                      f"{where} and aborted (SIGABRT; libgcc prints 'unable to allocate "
                      f"additional stack space'){again}")
        d.explanation.append(
            "With -fsplit-stack (gccgo, some C programs) each function checks the space left in "
            "its segment and __morestack maps a new segment when it runs out: the stack grows "
            "without RLIMIT_STACK, until mmap fails (RLIMIT_AS, overcommit, memory).")
        d.fix = Fix("code", f"bound the recursion in {who} if it is unbounded; if the depth is "
                    "legitimate, allow more memory (ulimit -v) or build without -fsplit-stack")
        return
    chk = f"{frame_label(ab.checker)}()" if ab.checker else "a checked function"
    d.verdict = "not-stack"
    d.headline = (f"not a stack growth problem: a buffer overflow caught by _FORTIFY_SOURCE -- "
                  f"{chk} called from {who}{where} found the write longer than its "
                  f"destination and aborted (SIGABRT) before writing")
    d.explanation.append(
        "With -D_FORTIFY_SOURCE the compiler passes the known size of the destination to "
        "checked variants of the string and memory functions; the write was larger, so "
        f"{ab.detector}() ended the process instead of corrupting memory.")
    d.fix = Fix("code", f"give the destination in {who}{where} room for what is written "
                "(or bound the copy: snprintf, strlcpy, a length check)")
