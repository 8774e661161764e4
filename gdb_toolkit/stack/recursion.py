"""Recursion in a bounded frame sample, and its real depth from the live chain.  Pure.

A 100 000-deep recursion is never walked through gdb's unwinder.  The sampled innermost
frames show the repeating cycle (wherever it starts: the fault may land 8 frames deep in
snprintf or malloc), each cycle function's frame size and where in its frame the return
address into its caller is saved.  The chain is then followed in the stack memory itself,
frame by frame (sp += that function's frame size, read the saved return address, look up
whose it is), for as long as the return addresses belong to the cycle: that counts the live
frames only -- stale copies of a return address left below a big buffer by an earlier, deeper
recursion are never counted -- and every call site (two ``rec()`` calls in one function
give two return addresses).  When the sizes repeat with a fixed period the check runs on
whole array slices (C speed); memory is read in bounded chunks; a walk stopped by the
read cap reports "at least".
"""
import array
from collections.abc import Callable

from gdb_toolkit.common.record import field, record
from gdb_toolkit.stack.model import Frame, Recursion

MIN_REPEATS = 4
MAX_CYCLE = 8
CHUNK = 16 << 20                # bytes read from the target at a time (whole periods)
WORD_CHUNK = 1 << 20            # bytes read at a time when following frames one by one
WALK_CAP = 2 << 30              # stack bytes walked at most (then: "at least")
LEARN_CAP = 8 << 20             # bytes read to learn the frame layout
SLOW_CAP = 4_000_000            # frames followed one by one at most
PAC_MASK = (1 << 48) - 1        # aarch64: pointer-authentication bits above the VA
WORD = {"i386": 4}              # bytes of a saved return address (8 elsewhere)


def frame_key(f: Frame) -> str:
    """What identifies a frame's function: its name, else its start, else its pc."""
    if f.function:
        return f.function
    if f.function_start is not None:
        return f"0x{f.function_start:x}"
    return f"0x{f.pc:x}"


def frame_label(f: Frame) -> str:
    """The name shown for a frame's function; a stripped one by its start address."""
    if f.function:
        return f.function
    if f.function_start is not None:
        return f"function at 0x{f.function_start:x} (no symbol)"
    return f"code at 0x{f.pc:x} (no symbol)"


def _primitive(period: list[str]) -> bool:
    """Not itself a repetition of a shorter period ([f, f] is [f] twice; [g, f, f, h] is
    one period even though f appears twice: qsort's callback recursion runs through two
    msort_with_tmp frames per round)."""
    n = len(period)
    return not any(n % d == 0 and period == period[:d] * (n // d) for d in range(1, n))


def find_cycle(frames: list[Frame], max_len: int = MAX_CYCLE) -> tuple[int, int, int] | None:
    """(first level, cycle length, frames covered) of the longest run of a repeating cycle of
    functions anywhere in *frames* (innermost first), or None when nothing repeats
    MIN_REPEATS times.  Ties: the innermost run, then the shortest cycle."""
    keys = [frame_key(f) for f in frames]
    n = len(keys)
    best = None
    for length in range(1, max_len + 1):
        start = 0
        while start + length * MIN_REPEATS <= n:
            end = start + length
            while end < n and keys[end] == keys[end - length]:
                end += 1
            covered = end - start
            if covered >= length * MIN_REPEATS and _primitive(keys[start:start + length]):
                if best is None or covered > best[2] or (covered == best[2] and start < best[0]):
                    best = (start, length, covered)
                start = end - length + 1
            else:
                start += 1
    return best


@record
class _Group:
    """A real frame with the frames gdb shows in it for functions inlined into it or that
    tail-called the next inner frame (they share its
    sp): one frame on the stack, *count* frames in bt."""
    frame: Frame
    count: int
    first: int                      # index (in the logical frames) of its innermost frame
    last: int                       # index of the real frame itself


def physical_frames(frames: list[Frame]) -> list[_Group]:
    """The real frames, each with the inlined frames gdb shows in it; a group the bounded walk
    cut short (its real frame not reached) is left out."""
    out, start = [], 0
    for i, f in enumerate(frames):
        if f.virtual and not f.signal_frame:
            continue
        out.append(_Group(f, i - start + 1, start, i))
        start = i + 1
    return out


@record
class _Slot:
    size: int                       # the function's frame size
    ra_off: int                     # where in its frame the return address to its caller is
    offs: set = field(default_factory=set)
    sp_off: int | None = None       # a signal frame: where the interrupted sp is saved (the
                                    # kernel aligns each frame, so its size varies)


# where a signal frame (gdb's sigtramp frame sp) keeps the interrupted sp: x86_64 &uc ->
# uc_mcontext.rsp; aarch64 &info -> uc.uc_mcontext.sp (see sigframe.py)
SIGFRAME_SP_OFF = {"x86_64": 40 + 120, "aarch64": 128 + 176 + 8 + 31 * 8}


def count_words(data: bytes, value: int, word: int = 8) -> int:
    """How many aligned *word*-byte little-endian words in *data* equal *value*."""
    usable = len(data) - len(data) % word
    if usable <= 0:
        return 0
    arr = array.array("Q" if word == 8 else "I")
    arr.frombytes(data[:usable])
    return arr.count(value)


def _code(word: int) -> str:
    return "Q" if word == 8 else "I"


def _words(data, word: int = 8) -> array.array:
    arr = array.array(_code(word))
    arr.frombytes(bytes(data[: len(data) - len(data) % word]) if not isinstance(data, bytes)
                  else data[: len(data) - len(data) % word])
    return arr


def _qwords(data, word: int = 8) -> memoryview:
    """Words (8 or 4 bytes) of *data* without copying it."""
    mv = memoryview(data)
    if mv.format != "B":
        mv = mv.cast("B")
    return mv[: len(mv) - len(mv) % word].cast(_code(word))


def learn_layout(run: list[Frame], keys: list[str], read, mask: int, counts: list[int] | None = None,
                 arch: str = "x86_64", word: int = 8):
    """({function: _Slot}, {saved return address: the function it returns into},
    {saved return address: frames bt shows for the frame it returns into}) from the sampled
    cycle frames (real frames: inlined functions live in their caller's frame).  Each
    function's frame size is the one most of its frames show (the innermost frames may be
    mid-prologue: gdb then merges or splits a frame); at least three quarters must agree,
    else there is no fixed layout (a run-time sized frame): None."""
    obs: dict[str, list] = {}
    budget = LEARN_CAP
    counts = counts or [1] * len(run)
    for i in range(1, len(run) - 1):
        f, caller = run[i], run[i + 1]
        size = caller.sp - f.sp
        if size <= 0 or size % word or size > budget:
            continue
        budget -= size
        data = read(f.sp, size)
        if data is None or len(data) < size:
            return None
        words = _words(data, word)
        offs = {word * k for k, w in enumerate(words) if w & mask == caller.pc & mask}
        obs.setdefault(keys[i], []).append((size, offs, words, keys[i + 1], counts[i + 1]))
    slots: dict[str, _Slot] = {}
    ra_to_key, ra_weight = {}, {}
    for key, seen in obs.items():
        sizes = [o[0] for o in seen]
        size = max(set(sizes), key=sizes.count)
        agree = [o for o in seen if o[0] == size and o[1]]
        if len(agree) * 4 < len(seen) * 3:
            return None
        offs = set.intersection(*(o[1] for o in agree))
        if not offs:
            return None
        slot = slots[key] = _Slot(size, max(offs), offs)
        if any(f.signal_frame for f, k in zip(run, keys) if k == key):
            slot.sp_off = SIGFRAME_SP_OFF.get(arch)
        for _size, _offs, words, caller_key, weight in agree:
            ra = words[slot.ra_off // word] & mask
            ra_to_key[ra] = caller_key
            ra_weight.setdefault(ra, []).append(weight)
    weights = {ra: max(set(ws), key=ws.count) for ra, ws in ra_weight.items()}
    return (slots, ra_to_key, weights) if slots else None


class _Memory:
    """The stack read in bounded pieces; counts what it read against WALK_CAP."""

    def __init__(self, read, top: int, word: int = 8):
        self.read, self.top, self.size = read, top, word
        self.base, self.words = None, None
        self.read_bytes = 0
        self.capped = False

    def block(self, addr: int, n: int) -> bytes | None:
        n = min(n, self.top - addr)
        if n <= 0:
            return None
        if self.read_bytes + n > WALK_CAP:
            self.capped = True
            return None
        data = self.read(addr, n)
        if data:
            self.read_bytes += len(data)
        return data

    def word(self, addr: int) -> int | None:
        w = self.size
        if self.base is None or not (self.base <= addr < self.base + w * len(self.words)):
            data = self.block(addr & ~(w - 1), WORD_CHUNK)
            if not data or len(data) < w:
                return None
            self.base, self.words = addr & ~(w - 1), _qwords(data, w)
        return self.words[(addr - self.base) // w]


def walk_chain(start_sp: int, order: list[str], slots: dict[str, _Slot], ra_to_key: dict,
               read, top: int, mask: int, in_cycle: Callable[[int], str | None] | None = None,
               ra_weight: dict | None = None, word: int = 8):
    """Follow the live chain outward from the frame at *start_sp* (function order[0]) while
    the saved return addresses belong to the cycle.  *order* is one period of the cycle's
    functions, outward.  Returns (real frames followed, frames bt would show for them, the
    last cycle function reached, exact, (the caller's sp, the return address into it) when the
    chain left the cycle): exact when the chain left the cycle, False when a read failed or a
    cap stopped it."""
    ra_weight = ra_weight if ra_weight is not None else {}
    mem = _Memory(read, top, word)
    n, shown, sp, key = 0, 0, start_sp, order[0]
    period = len(order)
    pbytes = sum(slots[k].size for k in order)
    offs, c = [], 0
    for k in order:
        offs.append(c + slots[k].ra_off)
        c += slots[k].size
    fast_after = 0
    slow = 0
    while True:
        if key == order[0] and n >= fast_after and pbytes % word == 0:
            got, got_shown = _fast_periods(mem, sp, order, offs, pbytes, ra_to_key, top, ra_weight,
                                           word)
            if got:
                n += got * period
                shown += got_shown
                sp += got * pbytes
                continue
            fast_after = n + max(1, CHUNK // max(pbytes, 1)) * period
        s = slots[key]
        w = mem.word(sp + s.ra_off)
        if w is None:
            return n, shown, key, False, None
        w &= mask
        nxt = ra_to_key.get(w)
        if nxt is None and in_cycle is not None:
            nxt = in_cycle(w)
            if nxt in slots:
                ra_to_key[w] = nxt           # another call site of a cycle function
        if nxt is None or nxt not in slots:
            return n, shown, key, True, (None if s.sp_off is not None else (sp + s.size, w))
        if s.sp_off is not None:
            saved = mem.word(sp + s.sp_off)          # the interrupted sp, saved by the kernel
            if saved is None:
                return n, shown, key, False, None
            sp = saved & mask
        else:
            sp += s.size
        key = nxt
        n += 1
        shown += ra_weight.get(w, 1)
        slow += 1
        if slow >= SLOW_CAP:
            return n, shown, key, False, None


def _fast_periods(mem: _Memory, sp: int, order, offs, pbytes: int, ra_to_key, top,
                  ra_weight, word: int = 8) -> tuple[int, int]:
    """Whole periods from *sp* whose saved return addresses all belong to the cycle, checked
    on array slices of one chunk, and the frames bt shows for them; (0, 0) when the chunk
    does not match throughout."""
    k = min(CHUNK // pbytes, (top - sp) // pbytes)
    if k < 2:
        return 0, 0
    data = mem.block(sp, k * pbytes)
    if not data or len(data) < k * pbytes:
        return 0, 0
    words = _qwords(data, word)
    stride = pbytes // word
    shown = 0
    for j, off in enumerate(offs):
        want = order[(j + 1) % len(order)]
        allowed = [w for w, key in ra_to_key.items() if key == want]
        sub = array.array(_code(word))
        sub.frombytes(words[off // word::stride][:k].tobytes())   # a C-level gather
        counts = [sub.count(v) for v in allowed]
        if sum(counts) != len(sub):
            return 0, 0
        shown += sum(c * ra_weight.get(v, 1) for c, v in zip(counts, allowed))
    return k, shown


def _call_order(frames: list[Frame], lo: int, hi: int, length: int, outer_key: str | None,
                real: set[int]) -> list[Frame]:
    """One period of the cycle among frames[lo:hi + 1], in call order: starting with the
    outermost live frame of the recursion (*outer_key*, a real frame) when known, else with
    the outermost sampled one."""
    start = None
    if outer_key is not None:
        start = next((j for j in range(hi, lo + length - 2, -1)
                      if j in real and frame_key(frames[j]) == outer_key), None)
    if start is None:
        start = hi
    return [frames[start - t] for t in range(length)]


#: how a chain walk that did not reach the outermost frame is described (a read cap, or a
#: word it could not read or that did not link up: the depth it gives is a lower bound)
STOPPED_SHORT = ("as far as it could be followed (a read cap, an unreadable word or a broken "
                 "link stopped it: the depth is at least this)")


def walk_fp_chain(run: list[Frame], cycle: set[str], read, top: int | None, in_cycle,
                  word: int = 8) -> tuple[int, bool, tuple[int, int] | None] | None:
    """Frames of the cycle outer to the sampled *run*, counted along the saved frame
    pointers: a function whose frame is sized at run time (a VLA, alloca) keeps one (x86:
    push rbp; mov rbp, rsp -- its caller's rbp at CFA - 2 words, the return address at CFA -
    1 word).  The convention is first checked on the sampled frames themselves: the frame
    pointer each saved must be the next one's CFA - 2 words.  (frames counted, exact: the
    chain left the cycle, (the caller's sp, the return address into it) when it did) or None
    when the frames do not keep frame pointers."""
    if top is None or len(run) < 3:
        return None
    mem = _Memory(read, top, word)
    # run[i]'s caller is run[i + 1]: the CFA of run[i] is run[i + 1].sp
    for i in range(len(run) - 2):
        saved = mem.word(run[i + 1].sp - 2 * word)       # run[i + 1]'s rbp, saved by run[i]
        if saved is None or saved != run[i + 2].sp - 2 * word:
            return None
    fp = mem.word(run[-1].sp - 2 * word)                 # the outermost sampled frame's own
    n, last = 0, run[-1].sp
    while True:
        if fp is None or not last < fp < top:
            return n, False, None
        ra = mem.word(fp + word)
        if ra is None:
            return n, False, None
        if in_cycle(ra) not in cycle:
            return n, True, (fp + 2 * word, ra)
        n += 1
        if n >= SLOW_CAP:
            return n, False, None
        last, fp = fp, mem.word(fp)


def detect_recursion(frames: list[Frame], frames_complete: bool, read, top: int | None,
                     arch: str = "x86_64", in_cycle=None) -> Recursion | None:
    """The recursion in *frames* (innermost first) and its depth (see the module doc).

    The cycle is found among the real frames (gdb shows functions inlined into a frame as
    frames of their own, sharing its sp: an -O2 recursion inlined into itself is one stack
    frame for several levels); the depth counts the frames bt shows, like the program's own
    counter would."""
    groups = physical_frames(frames)
    real = [g.frame for g in groups]
    found = find_cycle(real)
    if found is None:
        return None
    start, length, covered = found
    run_g = groups[start:start + covered]
    run = real[start:start + covered]
    keys = [frame_key(f) for f in run]
    lo, hi = run_g[0].first, run_g[-1].last
    shown = hi - lo + 1                                  # frames bt shows for the sampled run
    sized = [g for g in run_g if g.frame.size is not None]
    avg = (round(sum(g.frame.size for g in sized) / max(1, sum(g.count for g in sized)))
           if sized else 0)
    # the cycle as bt shows it (inlined functions included), for the names
    logical = find_cycle(frames[lo:hi + 1])
    llen = logical[1] if logical is not None else None
    depth, exact, method, outer_key, exit_at = shown, False, "", None, None
    if frames_complete:
        exact = True
        method = f"counted in the complete walk ({len(frames)} frames)"
        outer_key = keys[-1]
    elif read is not None and top is not None:
        word = WORD.get(arch, 8)
        mask = PAC_MASK if arch == "aarch64" else (1 << 8 * word) - 1
        learned = learn_layout(run, keys, read, mask, [g.count for g in run_g], arch, word)
        if learned is not None:
            slots, ra_to_key, ra_weight = learned
            e = len(run) - 1
            order = [keys[e - length + 1 + ((t + length - 1) % length)] for t in range(length)]
            if all(k in slots for k in order):
                _n, more, outer_key, exact, exit_at = walk_chain(run[e].sp, order, slots, ra_to_key, read,
                                                        top, mask, in_cycle, ra_weight, word)
                depth = shown + more
                per_period = sum(g.count for g in run_g[-length:])
                avg = round(sum(slots[k].size for k in order) / max(1, per_period))
                method = ("followed the live chain of saved return addresses in the stack memory "
                          + ("to its outermost frame" if exact else STOPPED_SHORT))
            else:
                method = ("the cycle's frames have no fixed layout; only the "
                          f"{shown} sampled frames are counted")
        else:
            fp_walk = None
            if arch in ("x86_64", "i386") and in_cycle is not None and all(
                    g.count == 1 for g in run_g):
                word = WORD.get(arch, 8)
                fp_walk = walk_fp_chain(run, set(keys), read, top, in_cycle, word)
            if fp_walk is not None:
                more, exact, exit_at = fp_walk
                depth = shown + more
                method = ("followed the chain of saved frame pointers (the cycle's frames are "
                          "sized at run time) " + ("to its outermost frame" if exact else
                                                   STOPPED_SHORT))
                if top is not None:
                    avg = round((top - run[0].sp) / max(1, depth))
            else:
                method = ("the cycle's frames have no fixed layout (a run-time sized frame); "
                          f"only the {shown} sampled frames are counted")
    else:
        method = f"only the {shown} sampled frames are counted"
    estimate = None
    if not exact and avg and top is not None:
        estimate = max(depth, (top - run[0].sp) // avg)
    reals = {g.last for g in run_g}
    if llen is not None and llen <= hi - lo + 1:
        outer = _call_order(frames, lo, hi, llen, outer_key, reals)
    else:
        outer = _call_order(real, start, start + covered - 1, length, outer_key,
                            set(range(start, start + covered)))
    rounds = depth // len(outer) if len(outer) > 1 else None
    r = Recursion([frame_label(f) for f in outer], [frame_key(f) for f in outer], shown, avg,
                  depth, exact, method, estimate, lo, rounds)
    if exit_at is not None:
        r.caller_sp, r.caller_pc = exit_at
    return r
