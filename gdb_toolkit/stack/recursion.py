"""Recursion in a bounded frame sample, and its real depth from the stack memory.  Pure.

A 100 000-deep recursion is never walked frame by frame: the top frames show the
repeating cycle and its average frame size; the depth is then the number of copies of
the cycle's return address found in the live stack memory (one ``array.count``), or,
without the memory, stack used / average frame -- and the report says which.
"""
import array

from gdb_toolkit.stack.model import Frame, Recursion

MIN_REPEATS = 4


def _key(f: Frame) -> str:
    return f.function or f"0x{f.pc:x}"


def find_cycle(frames: list[Frame], max_len: int = 8) -> tuple[int, int, int] | None:
    """(first level, cycle length, frames covered) of the longest repeating run of functions
    in *frames* (innermost first), or None when nothing repeats MIN_REPEATS times."""
    keys = [_key(f) for f in frames]
    best = None
    for start in range(0, min(len(keys), 4)):
        for length in range(1, max_len + 1):
            n = start + length
            while n < len(keys) and keys[n] == keys[n - length]:
                n += 1
            covered = n - start
            if covered >= length * MIN_REPEATS and (best is None or covered > best[2]):
                best = (start, length, covered)
        if best:
            break
    return best


def count_words(data: bytes, value: int, word: int = 8) -> int:
    """How many aligned *word*-byte little-endian words in *data* equal *value*."""
    usable = len(data) - len(data) % word
    if usable <= 0:
        return 0
    arr = array.array("Q" if word == 8 else "I")
    arr.frombytes(data[:usable])
    return arr.count(value)


def detect_recursion(frames: list[Frame], frames_complete: bool, stack_words: bytes,
                     stack_top: int | None, sp: int, word: int = 8) -> Recursion | None:
    found = find_cycle(frames)
    if found is None:
        return None
    start, length, covered = found
    run = frames[start:start + covered]
    sized = [f.size for f in run if f.size is not None and f.size > 0]
    avg = round(sum(sized) / len(sized)) if sized else 0
    cycle = [_key(f) for f in run[:length]]
    if frames_complete:
        depth, method = covered, f"counted: the walk reached the outermost frame ({len(frames)} frames)"
    else:
        # the recursive call's return address: the pc of the cycle's second occurrence (the
        # innermost frame's pc is where it stopped, e.g. a call to pause(), not the recursion)
        ret = run[length].pc if len(run) > length else None
        copies = count_words(stack_words, ret, word) if (ret and stack_words) else 0
        if copies:
            depth = copies * length + length
            method = (f"counted {copies} copies of the return address 0x{ret:x} in the "
                      f"{len(stack_words)} bytes of stack memory above sp")
        elif avg and stack_top:
            depth = (stack_top - sp) // avg
            method = (f"estimated: stack used {stack_top - sp} B / average frame {avg} B "
                      f"(only the top {len(frames)} frames were walked)")
        else:
            depth, method = covered, f"at least {covered} (only the top {len(frames)} frames were walked)"
    return Recursion(cycle, covered, avg, depth, method)
