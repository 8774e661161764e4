"""One thread's stack overflowing into another's.  Pure.

glibc allocates thread stacks top-down next to each other; a thread created with a zero
guard size (or whose overflow jumps its guard) writes straight into the block below it --
the next thread's thread control block at the top, then its frames -- before anything
faults.  The thread pointers (each TCB sits at the top of its thread's block) tell where
each block ends, so the overflow's reach names the damaged threads, and a thread found with
garbage in its frames names the thread that overran it.
"""
from gdb_toolkit.common.render import human_size as hs
from gdb_toolkit.stack.kernel_rules import CALLEE_MARGIN, thread_stacksize_for
from gdb_toolkit.stack.model import Diagnosis, Fix, StackFacts, StackRegion, ThreadSummary


def _top(t: ThreadSummary, page: int) -> int | None:
    if t.tp is None or t.main:
        return None
    return -(-(t.tp + 1) // page) * page


def _who(t: ThreadSummary) -> str:
    return f"thread {t.num} (LWP {t.tid}{', ' + repr(t.name) if t.name else ''})"


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
                         "guard page below it (pthread_attr_setguardsize 0, or a guard the "
                         "frame jumped over): the overflow went on into the next thread's block "
                         f"(its top, where its TCB lives, at 0x{v['block_top_address']:x}) without "
                         "faulting. Whatever this thread wrote there replaced that thread's "
                         "saved registers and return addresses: if it runs again it crashes "
                         "somewhere unrelated, with this thread's data in its frames.")
    needed = region.end - final_sp + CALLEE_MARGIN
    new = thread_stacksize_for(needed)
    if d.cause == "deep-recursion":
        d.fix = Fix("code", f"bound the recursion in {d.recursion.focus}(); keep a guard "
                    "page between thread stacks (the default pthread_attr_setguardsize)",
                    needed, stacksize=new)
        return d
    d.fix = Fix("pthread_attr_setstacksize",
                f"pthread_attr_setstacksize(&attr, {new})   /* {hs(new)}; thread {f.thread_num} "
                f"needs about {hs(needed)} */ and keep a guard page between thread stacks (do "
                "not set pthread_attr_setguardsize to 0) -- or move the buffer to the heap",
                needed, stacksize=new)
    return d


def damaged_by(f: StackFacts, ctx) -> dict | None:
    """Another thread whose stack reaches down past this thread's stack top."""
    if f.is_main_thread:
        return None
    me = next((t for t in f.threads if t.tid == f.tid), None)
    my_top = _top(me, f.page_size) if me else None
    if my_top is None:
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
                          "down_to_address": by["low"], "by_thread": by["num"]}]
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
