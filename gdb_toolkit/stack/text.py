"""Diagnosis -> text for the terminal, fitted to gdb's width (common.text, common.table).
Pure."""
from gdb_toolkit.common.render import hexaddr
from gdb_toolkit.common.render import human_size as hs
from gdb_toolkit.common.table import Col, render_table
from gdb_toolkit.common.text import key_values, wrap_lines
from gdb_toolkit.stack.model import Diagnosis, call_form
from gdb_toolkit.stack.recursion import frame_label

FRAME_ROWS = 12
LABEL = 8


#: the colour of each verdict's [tag] (common.style's state roles): a stack problem is red
VERDICT_ROLES = {"healthy": "good", "not-stack": "warn", "go-runtime": "warn"}


def _wrap(label: str, text: str, width: int | None, styler=None, keep=(), tag_role=None) -> str:
    """A labelled paragraph: 'VERDICT   text...' with the text wrapped under itself (*keep*:
    names never broken, see :func:`_names`); *tag_role*: the state colour of the text's
    leading ``[tag]`` (the verdict)."""
    lead = f"{label:<{LABEL}}  "
    lines = wrap_lines(text, width, lead, " " * len(lead), keep) or [lead]
    if styler is not None:
        first = lines[0][len(label):]
        if tag_role and text.startswith("[") and "]" in text:
            tag = text[:text.index("]") + 1]
            at = first.find(tag)
            if at >= 0:
                first = first[:at] + styler(tag_role, tag) + first[at + len(tag):]
        lines[0] = styler("title", label) + first
    return "\n".join(lines) + "\n"


def _frames(d: Diagnosis, width: int | None, styler=None) -> str:
    frames = d.frames
    rows, shown = [], frames
    if len(frames) > FRAME_ROWS:
        shown = frames[:FRAME_ROWS - 2] + frames[-1:]
    last = None
    for f in shown:
        if last is not None and f.level != last + 1:
            rows.append(["...", f"({f.level - last - 1} more frames)", "", "", ""])
        name = "<signal handler called>" if f.signal_frame else frame_label(f)
        rows.append([f"#{f.level}", name, hs(f.size) if f.size is not None else "-",
                     hexaddr(f.sp), f.source or hexaddr(f.pc)])
        last = f.level
    walked = (f"all {len(frames)}" if d.frames_complete else
              f"innermost {len(frames)} (gdb's walk stopped: {d.frames_stopped})"
              if d.frames_stopped else f"innermost {len(frames)} (bounded walk)")
    cols = [Col("frame", "key"), Col("function", "symbol"), Col("size", "number"),
            Col("sp", "address"), Col("where", "location")]
    return render_table(cols, rows, width, styler=styler,
                        title=f"frames: {walked}; size = caller's sp - sp (CFA difference)")


def _names(d: Diagnosis) -> tuple:
    """The mapping paths and thread name the report quotes that hold a space: one token each
    (a library under "/opt/my app/lib" is never cut at its space)."""
    names = [m.get("name") for m in [d.below, *d.nearest, (d.layout or {}).get("obstacle")] if m]
    return tuple(n for n in names if n and " " in n)


def render_diagnosis(d: Diagnosis, width: int | None = None, styler=None) -> str:
    t = d.thread
    # quoted as gdb quotes a thread's name; gdb_facts.thread_name escaped it (a control byte
    # is \xNN already; repr() would double its backslash: 'my worker \\x1b[31m')
    name = f' "{t["name"]}"' if t.get("name") and not t["main"] else ""
    who = (f"thread {t['num']}{name} (LWP {t['tid']}{', main' if t['main'] else ''}) of "
           f"{'process' if t['target'] == 'live' else 'core of process'} {t['pid']}, {t['arch']}")
    out = ["\n".join(wrap_lines(f"stack-diagnose: {who}", width, "", "    ")) + "\n"]
    keep = _names(d)
    out.append(_wrap("VERDICT", f"[{d.verdict}] {d.headline}", width, styler, keep,
                     VERDICT_ROLES.get(d.verdict, "bad")))
    for e in d.explanation:
        out.append(_wrap("why", e, width, styler, keep))
    out.append(_wrap("FIX", d.fix.text, width, styler, keep))
    out.append("\n")
    s = d.signal
    pairs = [
        ("signal", f"{s['signal_name']} ({s['si_code_name']})" + (f" at {hexaddr(s['address'])}" if s['address'] is not None else "")
         + (f" -- from {d.sources['signal info']}" if d.stopped_by or "pr_cursig" in d.sources.get("signal info", "") else "")
         if s else "none (not stopped by a signal)"),
    ]
    if d.fault_addr is not None and (s is None or s["address"] is None or s["address"] != d.fault_addr):
        pairs.append(("fault", f"{hexaddr(d.fault_addr)} ({d.sources.get('fault address', '')})"))
    if d.stopped_by:
        sb = d.stopped_by
        pairs.append(("stopped by", f"{sb['signal_name'] or 'no signal'} in {sb['symbol']}() "
                      f"(sp {hexaddr(sb['sp_address'])}), after the program's handler"))
    if d.handler:
        h = d.handler
        alt = h.get("altstack")
        signo = (f"signal {h['signo']}" if h.get("signo") is not None
                 else "a signal (not recorded: no SA_SIGINFO)")
        pairs.append(("handler", f"{h['symbol']}() for {signo} (frame #{h['level']} is "
                      "<signal handler called>)" + (f", on the alternate signal stack "
                      f"{hexaddr(alt['start_address'])}+{hs(alt['size'])}" if h.get('on_altstack') and alt else
                      ", on the same stack")))
    pairs.append(("sp / pc", f"{hexaddr(d.sp)} / {hexaddr(d.pc)}"))
    if d.stack is not None:
        st = d.stack
        pairs.append(("stack", f"{st.label} {hexaddr(st.start)}-{hexaddr(st.end)} "
                      f"({hs(st.end - st.start)} mapped; {st.how})"))
        if st.guard is not None:
            pairs.append(("guard", f"{hexaddr(st.guard.start)}-{hexaddr(st.guard.end)} "
                          f"({hs(st.guard.size)}, {st.guard.perms})"))
    if d.stack_used is not None:
        pairs.append(("stack used", f"{hs(d.stack_used)} ({d.stack_used} B: top - lowest of sp/fault)"))
    if d.growth_requested is not None:
        pairs.append(("growth", f"{hs(d.growth_requested)} ({d.growth_requested} B: top - fault page)"))
    if d.thread["main"] and d.verdict not in ("go-runtime",):
        lim = lambda v: "unlimited" if v is None else f"{hs(v)} ({v // 1024} KiB)"  # noqa: E731
        if d.rlimit_soft is None and d.rlimit_hard is None and "not recorded" in d.sources["RLIMIT_STACK"]:
            pairs.append(("RLIMIT_STACK", d.sources["RLIMIT_STACK"]))
        else:
            pairs.append(("RLIMIT_STACK", f"soft {lim(d.rlimit_soft)}, hard {lim(d.rlimit_hard)} "
                          f"-- {d.sources['RLIMIT_STACK']}"))
    if d.layout:
        lay = d.layout
        ob = lay.get("obstacle")
        if ob:
            pairs.append(("layout", f"{ob['name']} ends {hs(ob['distance_bytes'])} below the stack top; "
                          + ("placed below mmap_base: a bigger RLIMIT_STACK at exec moves it"
                             if lay["obstacle_moves_with_rlimit"] else
                             "placed there by the program: no limit moves it")
                          + (f"; randomisation {'on' if lay['aslr'] else 'off'}" if lay["aslr"] is not None else "")))
    pairs.append(("guard gap", f"{hs(d.guard_gap)} -- {d.sources['guard gap']}"))
    if d.below:
        b = d.below
        pairs.append(("next map", f"{b['name']} ({b['perms']}) ends {hexaddr(b['end_address'])}, "
                      f"{hs(b['distance_bytes'])} {b['where']} the fault"))
    if d.verdict == "not-stack":
        for n in d.nearest:
            pairs.append((f"map {n['where']}", f"{n['name']} ({n['perms']}) "
                          f"{hexaddr(n['start_address'])}-{hexaddr(n['end_address'])}, {hs(n['distance_bytes'])} away"))
    if d.culprit and d.culprit.instruction:
        ins = d.culprit.instruction
        pairs.append(("sp moved by", f"{ins.text} at {hexaddr(ins.address)}"
                      + (f" ({ins.source})" if ins.source else "") + f" in {call_form(d.culprit.function)}"))
    if d.recursion:
        r = d.recursion
        depth = f"depth {r.depth:,}" if r.depth_exact else f"depth at least {r.depth:,}"
        pairs.append(("recursion", f"{' -> '.join(r.functions)}: {depth}, "
                      f"{r.avg_frame} B/frame ({r.depth_method})"))
    for v in d.damaged_threads:
        pairs.append(("damaged", f"thread {v['num']} (LWP {v['tid']}): its block top "
                      f"{hexaddr(v['block_top_address'])}, overrun down to {hexaddr(v['down_to_address'])}"
                      + ("; all its live frames" if v.get("frames_covered") else "")))
    if d.fix.needed and d.verdict not in ("not-stack", "corrupt-sp"):
        pairs.append(("needs", f"about {hs(d.fix.needed)} of stack ({d.fix.needed} B incl. the "
                      "room for callees)"))
    out.append(key_values(pairs, width, styler, keep=keep))
    out.append("\n")
    out.append(_frames(d, width, styler))
    for a in d.notes:
        out.append(_wrap("note", a, width, styler, keep))
    if d.kernel:
        out.append("\n" + _kernel(d.kernel, width, styler))
    return "".join(out)


def _kernel(k: dict, width: int | None, styler=None) -> str:
    out = [f"kernel view (re-ran {' '.join(k['argv'])} as pid {k['pid']}: {k['exit']}):\n"]
    traced = k["traced_function"]
    how = f"{k['attach_method']} on {traced}" + (
        "" if traced == k["requested_function"] else f" (instead of {k['requested_function']})")
    pairs = []
    if k.get("run_as"):
        pairs.append(("ran as", k["run_as"]))
    if k.get("dropped_env"):
        pairs.append(("not passed", ", ".join(k["dropped_env"]) + " (loader/interpreter variables)"))
    if k.get("source"):
        pairs.append(("from", k["source"]))
    for n in k.get("notes") or []:
        pairs.append(("note", n))
    pairs.append(("traced", how))
    if k["attach_note"]:
        pairs.append(("why", k["attach_note"]))
    pairs.append(("growth calls", f"{k['growth_call_count']}, refused {len(k['refused'])}"
                  + (f", largest granted {hs(k['largest_granted_bytes'])}" if k["largest_granted_bytes"] else "")))
    for e in k["refused"][-3:]:
        pairs.append(("refused", f"{e['function']}: size {e['size']} ({hs(e['size'])}) -> "
                      f"{e['retval']} ({e['errno_name']})"))
    pairs.append(("compare", k["comparison"]))
    for sk in k["skipped"]:
        pairs.append(("not traced", sk))
    return out[0] + key_values(pairs, width, styler, indent="  ")


# -- --all-threads: a server's hundreds of healthy threads as one table ----------------------

#: healthy threads up to this many each get their whole report; more are grouped (a
#: 500-thread server printed 500 identical reports: 9,500 lines, 511 KB)
ALL_THREADS_FULL = 4
#: group rows shown at most (fullest first); the rest are counted in one line
GROUP_ROWS = 20
#: functions named per group (innermost first); the rest are counted
GROUP_FRAMES = 4


def stack_capacity(d: Diagnosis) -> int | None:
    """What a healthy thread's 'used' is measured against, as its headline says: the main
    thread's RLIMIT_STACK soft limit, another thread's stack block."""
    if d.thread.get("main"):
        return d.rlimit_soft
    return d.stack.end - d.stack.start if d.stack is not None else None


def needs_own_report(d: Diagnosis) -> bool:
    """Anything but a healthy stack below 90% of its capacity (the headline's 'nearly full')."""
    if d.verdict != "healthy" or d.damaged_threads:
        return True
    cap, used = stack_capacity(d), d.stack_used
    return used is None or bool(cap and used * 10 >= cap * 9)


def thread_ranges(nums: list[int], most: int = 6) -> str:
    """[2, 3, 4, 7] -> '2-4, 7'; past *most* ranges, '... (N more)' (the count of threads)."""
    runs = []
    for n in sorted(nums):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = [f"{a}-{b}" if b > a else f"{a}" for a, b in runs[:most]]
    if len(runs) > most:
        rest = sum(b - a + 1 for a, b in runs[most:])
        text.append(f"... ({rest} more)")
    return ", ".join(text)


def _chain(d: Diagnosis) -> str:
    names = [("<signal handler called>" if f.signal_frame else frame_label(f)) for f in d.frames]
    shown = " <- ".join(names[:GROUP_FRAMES])
    more = len(names) - GROUP_FRAMES
    if more > 0 or not d.frames_complete:
        shown += f" <- ({more if more > 0 else 0} more{'' if d.frames_complete else '+'})"
    return shown


def render_all(ds: list, width: int | None = None, styler=None) -> str:
    """stack-diagnose --all-threads as text: every thread that is not plainly healthy gets its
    whole report; healthy ones are one row per group of threads with the same frames, fullest
    group first (when there are more than ALL_THREADS_FULL of them)."""
    own = [d for d in ds if needs_own_report(d)]
    calm = [d for d in ds if not needs_own_report(d)]
    if len(calm) <= ALL_THREADS_FULL:
        return "\n".join(render_diagnosis(d, width, styler) for d in ds)
    t = ds[0].thread
    where = f"{'process' if t['target'] == 'live' else 'core of process'} {t['pid']}, {t['arch']}"
    groups: dict = {}
    for d in calm:
        key = (bool(d.thread.get("main")), stack_capacity(d),
               tuple(("<signal handler called>" if f.signal_frame else frame_label(f)) for f in d.frames),
               d.frames_complete)
        groups.setdefault(key, []).append(d)

    def fullness(g):
        worst = max(g, key=lambda d: d.stack_used / (stack_capacity(d) or 1))
        return worst.stack_used / (stack_capacity(worst) or 1), worst

    ranked = sorted(groups.values(), key=lambda g: (-fullness(g)[0], -len(g)))
    rows, below = [], []
    for g in ranked[:GROUP_ROWS]:
        share, worst = fullness(g)
        cap = stack_capacity(worst)
        rows.append([len(g), thread_ranges([d.thread["num"] for d in g]), hs(worst.stack_used),
                     hs(cap) if cap else "unlimited", f"{100 * share:.1f}%" if cap else "-",
                     f"{worst.thread['num']}"])
        below.append([("frames", _chain(worst))])
    head = (f"stack-diagnose: {len(ds)} threads of {where}: {len(calm)} healthy (below 90% of "
            f"their stack), {len(own)} with " + ("their own report below" if own else "a stack problem"))
    out = ["\n".join(wrap_lines(head, width, "", "    ")) + "\n"]
    cols = [Col("threads", "number"), Col("thread numbers", "text"), Col("most used", "number"),
            Col("of", "number"), Col("%", "number"), Col("fullest thread", "key")]
    out.append(render_table(cols, rows, width, styler=styler, below=below,
                            title=f"healthy threads, {len(groups)} group{'s' if len(groups) != 1 else ''} "
                                  "of the same frames, fullest first:"))
    if len(ranked) > GROUP_ROWS:
        rest = ranked[GROUP_ROWS:]
        out.append(f"... {len(rest)} more groups of {sum(map(len, rest))} threads, each "
                   "below the last row's share\n")
    out.append("\n".join(wrap_lines("frames: innermost first.  'stack-diagnose --thread N' "
                                    "shows a thread's whole report, --json every thread's.",
                                    width, "", "    ")) + "\n")
    for d in own:
        out.append("\n" + render_diagnosis(d, width, styler))
    return "".join(out)
