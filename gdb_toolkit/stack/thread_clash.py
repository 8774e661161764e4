"""One thread's stack overflowing into another's: the threads it reached (``clash``), the
thread that reached this one (``damaged_by``), and their verdicts.  Pure.

glibc allocates thread stacks top-down next to each other; a thread created with a zero
guard size (or whose overflow jumps its guard) writes straight into the block below it --
the next thread's thread control block at the top, then its frames -- before anything
faults.  The thread pointers (each TCB sits at the top of its thread's block) tell where
each block ends, so the overflow's reach names the damaged threads, and a thread found with
garbage in its frames names the thread that overran it.

Only another thread can do this, so diagnose.py imports this module for a thread that is not
the main one (the main thread's first call loads ~12 KB less bytecode, issue 14).
"""
from gdb_toolkit.common.render import human_size as hs
from gdb_toolkit.stack.kernel_rules import CALLEE_MARGIN, thread_stacksize_for
from gdb_toolkit.stack.model import (Diagnosis, Fix, StackFacts, StackRegion, ThreadSummary,
                                     call_form)


def _top(t: ThreadSummary, page: int) -> int | None:
    if t.tp is None or t.main:
        return None
    return -(-(t.tp + 1) // page) * page


def _who(t: ThreadSummary) -> str:
    # the name is escaped already (gdb_facts.thread_name): quoted as repr() would, not re-escaped
    return f"thread {t.num} (LWP {t.tid}{', ' + chr(39) + t.name + chr(39) if t.name else ''})"


def clash(f: StackFacts, ctx, region: StackRegion) -> list[dict]:
    """Threads whose stack block lies between this thread's overflow and its own block."""
    if f.is_main_thread or ctx.fault is None:
        return []
    low = min(ctx.sp, ctx.fault)
    out = []
    for t in f.threads:
        top = _top(t, f.page_size)
        if t.tid == f.tid or top is None:
            continue
        if low < top <= region.start:
            out.append({"num": t.num, "tid": t.tid, "name": t.name, "block_top_address": top,
                        "sp_address": t.sp,
                        "frames_covered": t.sp is not None and low < t.sp < top,
                        "down_to_address": low})
    return sorted(out, key=lambda v: -v["block_top_address"])


#: how to keep a guard page below a thread's stack, whichever way it was made
_KEEP_GUARD = ("do not set pthread_attr_setguardsize to 0; a block passed with "
               "pthread_attr_setstack gets no guard from glibc: mprotect its lowest page "
               "PROT_NONE and pass the rest")


def clash_verdict(f: StackFacts, d: Diagnosis, ctx, region: StackRegion, victims: list[dict],
                  phrase: str, final_sp: int) -> Diagnosis:
    d.verdict = "thread-clash"
    d.damaged_threads = victims
    v = victims[0]
    size = region.end - region.start
    names = ", ".join(f"thread {x['num']} (LWP {x['tid']})" for x in victims)
    frames = (" and all its live frames" if v["frames_covered"]
              else f" and the outermost {hs(v['block_top_address'] - v['down_to_address'])} of its stack")
    guard = region.guard
    where = ("in its guard page" if guard is not None and guard.contains(ctx.fault) else
             f"{hs(v['block_top_address'] - ctx.fault)} below its stack top")
    d.headline = (f"thread stack clash: thread {f.thread_num} (LWP {f.tid}) overflowed its "
                  f"{hs(size)} stack into the stack of {names}: its frames reach over that thread's "
                  f"thread control block{frames}; the fault at 0x{ctx.fault:x} is {where} -- {phrase}")
    d.explanation.insert(0, f"This thread's block [0x{region.start:x}, 0x{region.end:x}) has no "
                         "guard page below it (pthread_attr_setguardsize 0, a block the program "
                         "passed with pthread_attr_setstack() -- glibc puts no guard below "
                         "those -- or a guard the frame jumped over): the overflow went on into the next thread's block "
                         f"(its top, where its TCB lives, at 0x{v['block_top_address']:x}) without "
                         "faulting. Whatever this thread wrote there replaced that thread's "
                         "saved registers and return addresses: if it runs again it crashes "
                         "somewhere unrelated, with this thread's data in its frames.")
    needed = region.end - final_sp + CALLEE_MARGIN
    new = thread_stacksize_for(needed)
    if d.cause == "deep-recursion":
        d.fix = Fix("code", f"bound the recursion in {call_form(d.recursion.focus)}; keep a guard "
                    f"page between thread stacks ({_KEEP_GUARD})", needed, stacksize=new)
        return d
    d.fix = Fix("pthread_attr_setstacksize",
                f"pthread_attr_setstacksize(&attr, {new})   /* {hs(new)}; thread {f.thread_num} "
                f"needs about {hs(needed)} */ and keep a guard page between thread stacks "
                f"({_KEEP_GUARD}) -- or move the buffer to the heap",
                needed, stacksize=new)
    return d


#: (the summaries list, page size, lows sorted, the highest top among lows[:i+1]) of the last
#: damaged_by call: --all-threads asks once per thread about the same list
_reach_index: list = [None]


def _reaches(threads: list, page: int, my_top: int) -> bool:
    """Whether any thread's stack reaches from above *my_top* to below it (top > my_top > its
    lowest sp/fault) -- O(log n) after one sort per list: damaged_by's scan of every thread
    for every thread was quadratic (0.56 s of a 500-thread server's --all-threads; ~9 s at
    2,000 threads).  A true answer still gets the exact scan."""
    from _bisect import bisect_left

    cached = _reach_index[0]
    if cached is None or cached[0] is not threads or cached[1] != page:
        pairs = []
        for t in threads:
            top = _top(t, page)
            lows = [x for x in (t.sp, t.fault_addr) if x is not None]
            if top is not None and lows:
                pairs.append((min(lows), top))
        pairs.sort()
        lows, highest, run = [], [], 0
        for low, top in pairs:
            run = max(run, top)
            lows.append(low)
            highest.append(run)
        cached = _reach_index[0] = (threads, page, lows, highest)
    lows, highest = cached[2], cached[3]
    i = bisect_left(lows, my_top)          # lows[:i] < my_top
    return i > 0 and highest[i - 1] > my_top


def damaged_by(f: StackFacts, ctx) -> dict | None:
    """Another thread whose stack reaches down past this thread's stack top."""
    if f.is_main_thread:
        return None
    me = next((t for t in f.threads if t.tid == f.tid), None)
    my_top = _top(me, f.page_size) if me else None
    if my_top is None or not _reaches(f.threads, f.page_size, my_top):
        return None
    best = None
    for t in f.threads:
        top = _top(t, f.page_size)
        if t.tid == f.tid or top is None or top <= my_top:
            continue
        lows = [x for x in (t.sp, t.fault_addr) if x is not None]
        if not lows:
            continue
        low = min(lows)
        if low < my_top and top - low < (1 << 30):
            if best is None or low < best["low"]:
                best = {"num": t.num, "tid": t.tid, "name": t.name, "low": low,
                        "block_top": top, "fault": t.fault_addr, "sp": t.sp, "my_top": my_top,
                        "reaches_my_sp": ctx.sp is not None and low < ctx.sp}
    return best


def victim_verdict(f: StackFacts, d: Diagnosis, ctx, by: dict) -> Diagnosis:
    prev_verdict, prev_headline = d.verdict, d.headline
    d.verdict = "thread-clash"
    d.damaged_threads = [{"num": f.thread_num, "tid": f.tid, "name": f.thread_name,
                          "block_top_address": by["my_top"], "sp_address": ctx.sp,
                          "frames_covered": by["reaches_my_sp"],
                          "down_to_address": by["low"], "by_thread_num": by["num"]}]
    what = ("this thread's control block and all its live frames" if by["reaches_my_sp"] else
            f"this thread's control block and the outermost {hs(by['my_top'] - by['low'])} of "
            "its stack")
    reach = (f"faulted at 0x{by['fault']:x}" if by["fault"] is not None
             else f"has sp 0x{by['sp']:x}")
    d.headline = (f"this thread's stack was overrun: thread {by['num']} (LWP {by['tid']}) "
                  f"overflowed into it ({reach}, {hs(by['my_top'] - by['low'])} below this "
                  f"thread's stack top 0x{by['my_top']:x}); thread {by['num']}'s frames cover {what}"
                  + (f"; {prev_headline}" if prev_verdict != "healthy" and prev_headline else ""))
    d.explanation.insert(0, f"Thread {by['num']}'s block lies above this one (its stack top "
                         f"0x{by['block_top']:x}) with no guard page in between: its overflow "
                         "went on into this thread's block without faulting; whatever it wrote "
                         "there replaced this thread's saved registers and return addresses "
                         "(bt then shows the other thread's data as frames).")
    d.fix = Fix("code", f"fix thread {by['num']}'s overflow (stack-diagnose --thread "
                f"{by['num']}): give it a bigger stack and keep the guard page between thread "
                "stacks")
    return d
