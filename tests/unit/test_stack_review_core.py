"""Pure-core checks found in review (rev-stack): recursion through inlined frames and cycles
that hold one function twice."""
import struct

from gdb_toolkit.stack.diagnose import frame_sizes
from gdb_toolkit.stack.model import Frame
from gdb_toolkit.stack.recursion import detect_recursion, find_cycle


def test_a_period_may_hold_a_function_twice():
    names = ["qsort", "cmp", "msort", "msort"] * 10
    frames = [Frame(i, 0x1000 + i, 0x8000 + 64 * i, n) for i, n in enumerate(names)]
    start, length, covered = find_cycle(frames)
    assert length == 4 and covered == 40
    # [f, f] is not a period of its own: f alone is
    assert find_cycle([Frame(i, 1, 8 * i, "f") for i in range(10)])[1] == 1


def test_inlined_levels_are_counted_through_the_live_chain():
    """A real frame of 64 B holding three inlined levels: the saved return address of each
    real frame stands for the three frames bt shows there."""
    base, size, real_frames = 0x10000, 64, 500
    ra_rec, ra_main = 0x4010, 0x9999
    mem = bytearray(size * real_frames + 64)
    for k in range(real_frames):
        struct.pack_into("<Q", mem, k * size + size - 8, ra_main if k == real_frames - 1 else ra_rec)

    def read(addr, n):
        off = addr - base
        return bytes(mem[off:off + n]) if 0 <= off and off + n <= len(mem) else None

    frames = []
    for k in range(40):                              # 40 real frames sampled, 3 levels each
        for j in range(3):
            frames.append(Frame(len(frames), 0x4000 if k == 0 and j == 0 else ra_rec,
                                base + size * k, "rec", virtual=j < 2))
    frame_sizes(frames)
    r = detect_recursion(frames, False, read, base + len(mem))
    assert r.depth == 3 * real_frames and r.depth_exact
    assert r.avg_frame == round(size / 3) and r.functions == ["rec"]
