"""stack-diagnose over hundreds of threads: the O(log n) reach test against the plain scan
over every thread (damaged_by's former loop), and the thread-number ranges."""
import random

from gdb_toolkit.stack import thread_clash
from gdb_toolkit.stack.model import ThreadSummary
from gdb_toolkit.stack.text import thread_ranges

PAGE = 4096


def scan(threads, my_top):
    """The exact question, thread by thread."""
    for t in threads:
        top = thread_clash._top(t, PAGE)
        lows = [x for x in (t.sp, t.fault_addr) if x is not None]
        if top is not None and lows and min(lows) < my_top < top:
            return True
    return False


def test_reach_index_agrees_with_the_scan():
    rng = random.Random(7)
    for _round in range(200):
        threads, base = [], 0x7f0000000000
        for n in range(rng.randint(1, 60)):
            block = rng.choice([64, 128, 256]) << 10
            base += block + PAGE * rng.randint(0, 2)
            tp = base - rng.randint(1, 2000)
            sp = base - rng.randint(64, block) if rng.random() > 0.1 else None
            if rng.random() < 0.15:            # an overflow reaching below its own block
                sp = base - block - rng.randint(1, 3 * block)
            fault = sp - rng.randint(0, 64) if sp is not None and rng.random() < 0.1 else None
            threads.append(ThreadSummary(n + 2, 1000 + n, None, sp, tp if rng.random() > 0.05 else None,
                                         fault, main=rng.random() < 0.05))
        for t in threads:
            my_top = thread_clash._top(t, PAGE)
            if my_top is not None:
                assert thread_clash._reaches(threads, PAGE, my_top) == scan(threads, my_top)
        for probe in (0, base // 2, base + (1 << 20)):
            assert thread_clash._reaches(threads, PAGE, probe) == scan(threads, probe)


def test_thread_ranges():
    assert thread_ranges([5, 2, 3, 4, 9]) == "2-5, 9"
    assert thread_ranges([1]) == "1"
    assert thread_ranges(list(range(1, 30, 2)), most=3) == "1, 3, 5, ... (12 more)"


def test_find_mapping_bisection_agrees_with_the_scan():
    from gdb_toolkit.common.procfs import Mapping, find_mapping

    def scan(maps, addr):
        return next((m for m in maps if m.start <= addr < m.end), None)

    rng = random.Random(3)
    for _round in range(100):
        maps, at = [], rng.randint(0, 1 << 20) * PAGE
        for _ in range(rng.randint(0, 80)):
            at += rng.randint(0, 3) * PAGE
            size = rng.randint(1, 8) * PAGE
            maps.append(Mapping(at, at + size, "r--p", 0, "00:00", 0, ""))
            at += size
        if maps and rng.random() < 0.3:              # unsorted or overlapping: searched in order
            maps.append(Mapping(maps[0].start, maps[-1].end, "r--p", 0, "00:00", 0, "x"))
            rng.shuffle(maps)
        lo, hi = (maps[0].start, max(m.end for m in maps)) if maps else (0, PAGE)
        for addr in [rng.randint(lo - PAGE, hi + PAGE) for _ in range(50)] + [m.start for m in maps] \
                + [m.end for m in maps] + [m.end - 1 for m in maps]:
            assert find_mapping(maps, addr) is scan(maps, addr), (addr, maps)
