"""ktrace's pure core: worker protocol via a fake worker, option parsing, attach planning and
fallbacks, argument resolution, BPF C generation, tracepoint formats, header choice."""
import os
import re
import sys
from pathlib import Path

import pytest

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.ktrace import api, bpf_source, kheaders, protocol
from gdb_toolkit.ktrace.argexpr import parse_args_spec
from gdb_toolkit.ktrace.fallbacks import fallbacks_for, syscall_of
from gdb_toolkit.ktrace.plan import KernelCaps, failure_error, make_plan, resolve_values, split_target
from gdb_toolkit.ktrace.tp_format import parse_format
from gdb_toolkit.ktrace.worker import signed_retval
from tests.support.ktrace_oracles import wait_gone

FAKE = [sys.executable, str(Path(__file__).resolve().parents[1] / "support" / "fake_ktrace_worker.py")]


# -- protocol through a fake worker ---------------------------------------------------------------
def test_trace_collects_events_from_worker():
    res = api.trace(api.TraceSpec("fake_ok", pid=7, count=3), argv=FAKE)
    assert res.attach_method == "kprobe" and res.traced_function == "fake_ok"
    assert [e.task for e in res.events] == [0xffff888000001000 + i for i in range(3)]
    assert res.events[0].retval == -12 and res.events[0].args["size"] == 16588800
    assert res.end_reason == "count"


def test_a_busy_trace_keeps_the_last_events_and_counts_all(monkeypatch):
    """Memory is bounded (api.MAX_KEPT, GDB_TOOLKIT_KTRACE_KEEP): the last events are kept,
    every one is counted; the unread event stream is bounded the same way."""
    monkeypatch.setenv(api.KEEP_ENV, "5")
    res = api.trace(api.TraceSpec("fake_ok", pid=7, count=20), argv=FAKE)
    assert res.received == 20 and [e.task for e in res.events] == \
        [0xffff888000001000 + i for i in range(15, 20)]
    s = api.start(api.TraceSpec("fake_ok", pid=7, count=20), argv=FAKE)
    s.wait(30)
    assert s.received == 20 and s.dropped == 15
    assert [e.task for e in s.poll()] == [0xffff888000001000 + i for i in range(15, 20)]


def test_worker_error_becomes_toolkit_error():
    with pytest.raises(ToolkitError) as exc:
        api.start(api.TraceSpec("fake_error"), argv=FAKE)
    assert "no kprobes" in str(exc.value) and "Fix: boot a kernel" in str(exc.value)


def test_worker_dying_silently_is_reported():
    with pytest.raises(ToolkitError) as exc:
        api.start(api.TraceSpec("fake_die"), argv=FAKE)
    assert "died (exit status 3)" in str(exc.value)


def test_stop_asks_the_worker_and_waits_for_end():
    api.shutdown()
    s = api.start(api.TraceSpec("fake_hang"), argv=FAKE)
    assert s.running and s.armed.programs == ["gtk_kt_entry"]
    end = s.stop()
    assert end["reason"] == "stopped" and not s.running
    assert s.proc.poll() is None                   # the worker stays, ready for the next trace
    api.shutdown()
    s.proc.wait(10)


def test_worker_stays_warm_between_traces(monkeypatch):
    """The second trace is served by the same worker process (no start-up, no import)."""
    monkeypatch.setenv(api.WORKER_ENV, " ".join(FAKE))
    api.shutdown()
    first = api.trace(api.TraceSpec("fake_ok", pid=7, count=1))
    second = api.trace(api.TraceSpec("fake_ok", pid=7, count=1))
    assert first.armed.worker_pid == second.armed.worker_pid
    assert not first.armed.warm and second.armed.warm
    pid = second.armed.worker_pid
    api.shutdown()
    assert wait_gone(pid)


def test_warm_worker_leaving_at_the_same_moment_is_replaced(monkeypatch):
    """An idle worker may leave just as a request is written: the trace goes to a new one."""
    monkeypatch.setenv(api.WORKER_ENV, " ".join(FAKE))
    api.shutdown()
    api.trace(api.TraceSpec("fake_ok", pid=7, count=1))
    w = api._idle[0]
    w.send({"type": "trace", "function": "fake_bye"})      # the worker says bye and leaves
    w.gone.wait(10)
    w.gone.clear()                                          # ... unseen by the pool
    with api._pool_lock:
        api._idle[:] = [w]
    res = api.trace(api.TraceSpec("fake_ok", pid=7, count=1))
    assert res.armed.worker_pid != w.pid and len(res.events) == 1
    api.shutdown()


def test_notes_say_which_processes_all_leaves_out(monkeypatch):
    monkeypatch.setenv(api.WORKER_ENV, " ".join(FAKE))
    api.shutdown()
    s = api.start(api.TraceSpec("fake_hang", caller_name="gdb"))
    note = next(n for n in s.armed.notes if n.startswith("not traced"))
    assert f"gdb (pid {os.getpid()})" in note and f"worker (pid {s.proc.pid})" in note
    s.stop()
    s = api.start(api.TraceSpec("fake_hang", include_self=True))
    assert not any(n.startswith("not traced") for n in s.armed.notes)
    s.stop()
    api.shutdown()


def test_noise_lines_are_ignored():
    res = api.trace(api.TraceSpec("fake_garbage", count=1), argv=FAKE)
    assert len(res.events) == 1


def test_spec_validation():
    with pytest.raises(ToolkitError):
        api.start(api.TraceSpec("x", count=0), argv=FAKE)
    with pytest.raises(ToolkitError):
        api.trace(api.TraceSpec("x"), argv=FAKE)       # neither count nor timeout


def test_protocol_rejects_garbage():
    with pytest.raises(protocol.ProtocolError):
        protocol.decode("not json")
    with pytest.raises(protocol.ProtocolError):
        protocol.decode('{"type": "bogus"}')
    msg = protocol.decode(protocol.encode("end", reason="count", events=1, detached=True))
    assert msg["reason"] == "count"


# -- targets, fallbacks, planning ----------------------------------------------------------------
def test_split_target():
    assert split_target("tracepoint:syscalls:sys_enter_mmap") == ("tracepoint", "syscalls:sys_enter_mmap")
    assert split_target("kprobe:vfs_read") == ("function", "vfs_read")
    for bad in ("tracepoint:nocolon", "rm -rf", "", "tracepoint::x"):
        with pytest.raises(ToolkitError):
            split_target(bad)


def test_inlined_function_falls_back_to_caller():
    caps = KernelCaps(has_symbol=lambda n: n != "acct_stack_growth")
    plan = make_plan("acct_stack_growth", fallbacks_for("acct_stack_growth"), caps)
    first = plan.candidates[0]
    assert (first.function, first.method) == ("expand_downwards", "kprobe")
    assert "inlined" in first.why and first.is_fallback
    assert any("acct_stack_growth: not in /proc/kallsyms" in s for s in plan.skipped)


def test_no_kprobes_uses_kfunc_then_tracepoint():
    caps = KernelCaps(kprobes="no kprobes in this kernel (CONFIG_KPROBES is not set)")
    plan = make_plan("thp_get_unmapped_area", fallbacks_for("thp_get_unmapped_area"), caps)
    assert [(c.method, c.function) for c in plan.candidates] == [
        ("kfunc", "thp_get_unmapped_area"), ("tracepoint", "syscalls:sys_enter_mmap")]
    caps.kfunc = "no fentry"
    plan = make_plan("thp_get_unmapped_area", [], caps)
    assert plan.candidates == []
    err = failure_error("thp_get_unmapped_area", plan.skipped)
    assert "CONFIG_KPROBES" in err.cause and "CONFIG_KPROBES=y" in err.fix


def test_tracefs_missing_is_named():
    plan = make_plan("tracepoint:sched:sched_switch", [], KernelCaps(tracefs="tracefs is not mounted"))
    err = failure_error("tracepoint:sched:sched_switch", plan.skipped)
    assert "tracefs" in str(err) and "mount -t tracefs" in str(err)


def test_forced_method_and_syscall_fallback():
    assert syscall_of("__x64_sys_mmap") == "mmap" and syscall_of("vfs_read") is None
    plan = make_plan("__x64_sys_mmap", fallbacks_for("__x64_sys_mmap"), KernelCaps(), method="tracepoint")
    assert [c.function for c in plan.candidates] == ["syscalls:sys_enter_mmap"]
    assert plan.candidates[0].exit_tracepoint == "syscalls:sys_exit_mmap"


# -- argument resolution -------------------------------------------------------------------------
class FakeOracle:
    PARAMS = {"expand_downwards": [("vma", "vm_area_struct"), ("address", None)],
              "acct_stack_growth": [("vma", "vm_area_struct"), ("size", None), ("grow", None)]}
    FIELDS = {("vm_area_struct", "vm_end"): ([(8, 8)], False),
              ("vm_area_struct", "vm_start"): ([(0, 8)], False),
              ("task_struct", "signal->rlim[3].rlim_cur"): ([(0x8a8, 8), (0x3b8, 8)], False)}

    def func_params(self, fn):
        return self.PARAMS.get(fn)

    def field_reads(self, struct, path):
        return self.FIELDS[(struct, path)]


def test_args_parse():
    a = parse_args_spec("size, start=vma->vm_start, d=arg1-16")
    assert [x.name for x in a] == ["size", "start", "d"]
    assert a[1].terms[0].base == "vma" and a[1].terms[0].path == "vm_start"
    assert [t.sign for t in a[2].terms] == [1, -1] and a[2].terms[1].const == 16
    for bad in ("a=", "x=1+", "9bad=1", "a,a", "x=010", "x=vma->", "x=a[b]", "x=a b", "x=$y",
                "x=" + "9" * 30, "x=" + "+".join(["a"] * 40), "x=a" + "->b" * 40):
        with pytest.raises(ToolkitError):
            parse_args_spec(bad)


def test_args_numbers_are_c_literals_without_octal_ambiguity():
    vals = [t.const for t in parse_args_spec("x=0x10+0o10+0b10+10+0")[0].terms]
    assert vals == [16, 8, 2, 10, 0]
    with pytest.raises(ToolkitError) as exc:
        parse_args_spec("x=010")
    assert "leading 0" in exc.value.cause and "0o10" in exc.value.fix
    assert parse_args_spec("n=-vma->vm_end")[0].terms[0].sign == -1


def test_validate_refuses_before_any_worker():
    for spec in (api.TraceSpec("vfs_read", args=["x=010"]), api.TraceSpec("vfs_read", capture=["a->"]),
                 api.TraceSpec("vfs_read", pid=0), api.TraceSpec("vfs_read", method="uprobe"),
                 api.TraceSpec("vfs_read", timeout=float("inf")), api.TraceSpec("bad name")):
        with pytest.raises(ToolkitError):
            api.start(spec, argv=["/nonexistent/worker"])     # never reached: validation first


def test_fallback_maps_size_to_vm_end_minus_address():
    caps = KernelCaps(has_symbol=lambda n: n != "acct_stack_growth")
    cand = make_plan("acct_stack_growth", fallbacks_for("acct_stack_growth"), caps).candidates[0]
    vals = resolve_values(parse_args_spec("size"), ["signal->rlim[3].rlim_cur"], cand,
                          FakeOracle().func_params(cand.function), FakeOracle())
    size = vals[0]
    assert [(t.src, t.index, t.reads, t.sign) for t in size.terms] == [
        ("arg", 0, [(8, 8)], 1), ("arg", 1, [], -1)]
    c = bpf_source.value_c(size, "kprobe")
    assert c == "gtk_kt_rd((u64)PT_REGS_PARM1(ctx) + 8, 8) - (u64)PT_REGS_PARM2(ctx)"
    rlim = vals[1]
    assert rlim.kind == "field" and rlim.terms[0].src == "task"
    assert bpf_source.value_c(rlim, "kfunc") == \
        "gtk_kt_rd(gtk_kt_rd((u64)bpf_get_current_task() + 2216, 8) + 952, 8)"


def test_unknown_arg_on_requested_function_is_an_error():
    cand = make_plan("acct_stack_growth", [], KernelCaps()).candidates[0]
    with pytest.raises(ToolkitError) as exc:
        resolve_values(parse_args_spec("bogus"), [], cand, FakeOracle().func_params("acct_stack_growth"),
                       FakeOracle())
    assert "no parameter 'bogus'" in str(exc.value) and "vma, size, grow" in str(exc.value)


def test_unknown_arg_on_fallback_is_unavailable():
    caps = KernelCaps(kprobes="no", kfunc="no")
    cand = make_plan("acct_stack_growth", fallbacks_for("acct_stack_growth"), caps).candidates[0]
    assert cand.method == "tracepoint"
    fields = parse_format(SAMPLE_FORMAT)
    vals = resolve_values(parse_args_spec("size, address"), [], cand, None, None, fields)
    assert vals[0].unavailable and vals[1].terms[0].src == "tp" and vals[1].terms[0].index == 8


# -- BPF C ------------------------------------------------------------------------------------------
def test_generated_program_filters_pid_and_uses_prefix():
    cand = make_plan("expand_downwards", [], KernelCaps()).candidates[0]
    prog = bpf_source.generate(cand, [], pid=4242, ret=True, stack=True)
    assert "if (pid != 4242) return 0;" in prog.text
    assert prog.entry.startswith(bpf_source.PREFIX) and prog.exit.startswith(bpf_source.PREFIX)
    assert "PT_REGS_RC(ctx)" in prog.text and "get_stackid" in prog.text
    assert "->" not in prog.text.replace("p->retval", "").replace("p->flags", "")   # no struct derefs
    kf = make_plan("expand_downwards", [], KernelCaps(kprobes="no")).candidates[0]
    prog = bpf_source.generate(kf, [], pid=None, ret=True, stack=False, nparams=2)
    assert prog.entry == "kfunc__expand_downwards" and "ctx[2]" in prog.text and "if (pid" not in prog.text


SAMPLE_FORMAT = """name: page_fault_user
ID: 123
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned long address;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned long ip;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned long error_code;\toffset:24;\tsize:8;\tsigned:0;
"""


def test_tracepoint_format():
    f = parse_format(SAMPLE_FORMAT)
    assert f["address"] == (8, 8, False) and f["common_pid"] == (4, 4, True) and len(f) == 6


def test_retval_interpretation():
    assert signed_retval(0xFFFFFFF4, (4, True)) == -12           # int -ENOMEM, upper bits clear
    assert signed_retval(0xFFFFFFFFFFFFFFF4, None) == -12
    assert signed_retval(0xFFFFFFF4, None) == -12
    assert signed_retval(0x7FFFF7800000, (8, False)) == 0x7FFFF7800000


def test_headers_choice(tmp_path):
    with pytest.raises(ToolkitError) as exc:
        kheaders.choose("6.1.0-99-amd64", modules_dir=str(tmp_path), src_dir=str(tmp_path),
                        kheaders=str(tmp_path / "none"))
    assert "apt-get install linux-headers-6.1.0-99-amd64" in str(exc.value)
    common = tmp_path / "linux-headers-6.1.0-5-common"
    (common / "include" / "linux").mkdir(parents=True)
    (common / "include" / "linux" / "kconfig.h").write_text("")
    (tmp_path / "linux-headers-6.1.0-5-amd64" / "include" / "generated").mkdir(parents=True)
    ch = kheaders.choose("6.18.0-custom", modules_dir=str(tmp_path), src_dir=str(tmp_path),
                         kheaders=str(tmp_path / "none"))
    assert ch.env["BCC_KERNEL_SOURCE"] == str(common) and "6.18.0-custom" in ch.note
    assert any("linux-headers-6.1.0-5-amd64/include" in f for f in ch.cflags)


def test_stale_bcc_kprobe_events_of_dead_processes_are_removed(tmp_path):
    from gdb_toolkit.ktrace.worker import remove_stale_bcc_probes

    dead, live = 4194399, os.getpid()          # above pid_max: cannot exist
    ev = tmp_path / "kprobe_events"
    ev.write_text(f"r64:kprobes/r_vfs_read_bcc_{dead} vfs_read\n"
                  f"p:kprobes/p_vfs_read_bcc_{live} vfs_read\n"
                  "p:kprobes/gtk_probe do_sys_openat2\n")
    notes = []
    remove_stale_bcc_probes(str(tmp_path), notes)
    written = ev.read_text().splitlines()[3:]
    assert written == [f"-:kprobes/r_vfs_read_bcc_{dead}"]
    assert notes and f"r_vfs_read_bcc_{dead}" in notes[0]


def test_unknown_tracepoint_error_names_where_to_look():
    caps = KernelCaps()
    caps.tracepoint_exists = lambda cat, name: False
    plan = make_plan("tracepoint:nosuch:thing", [], caps)
    err = failure_error("tracepoint:nosuch:thing", plan.skipped)
    assert "no such tracepoint" in err.cause
    # one-line error: there are no "reasons above" to point at; say where tracepoints are listed
    assert "above" not in err.fix and "available_events" in err.fix, err.fix


def test_ktypes_bad_btf_file_is_one_line(tmp_path):
    """A file that is not BTF is refused in one line before bpftool runs (bpftool printed two
    lines, libbpf's and its own); a FIFO is refused without blocking."""
    from gdb_toolkit.ktrace.ktypes_build import read_btf, render_c
    bad = tmp_path / "not_btf"
    bad.write_text("root:x:0:0:root:/root:/bin/bash\n")
    for call in (read_btf, render_c):
        with pytest.raises(ToolkitError) as ei:
            call(str(bad))
        assert "\n" not in str(ei.value) and "is not BTF" in str(ei.value), str(ei.value)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ToolkitError) as ei:
        read_btf(str(fifo))
    assert "not a regular file" in str(ei.value) or "FIFO" in str(ei.value), str(ei.value)


def test_ktypes_missing_tool_fails_before_any_temporary_file(tmp_path, monkeypatch):
    """A machine without the compiler (or bpftool) gets the one-line fix before ktypes makes a
    private directory or a cache temp file: nothing to make, nothing to remove (removing took
    shutil's ~3 ms of imports).  Oracles: no call to make a directory, the directories' listings."""
    from gdb_toolkit.common import private_dirs
    from gdb_toolkit.ktrace import ktypes_build
    made = []
    monkeypatch.setattr(private_dirs, "make_private_dir", lambda *a, **k: made.append(a) or 1 / 0)
    btf = "/sys/kernel/btf/vmlinux"
    if not os.path.exists(btf):
        pytest.skip("this kernel has no /sys/kernel/btf/vmlinux to build from")
    cache, tmp = tmp_path / "cache", tmp_path / "tmp"
    cache.mkdir(mode=0o700)
    tmp.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("TMPDIR", str(tmp))
    with pytest.raises(ToolkitError) as ei:
        ktypes_build.build(btf, force=True, compiler="gdb-toolkit-no-such-cc")
    # bpftool is looked for first: a machine without it (the case this is for) names bpftool
    assert re.match(r"(bpftool|gdb-toolkit-no-such-cc) is needed", str(ei.value)), str(ei.value)
    assert "\n" not in str(ei.value)
    assert made == [] and list(tmp.iterdir()) == []
    assert [p.name for p in cache.rglob("*") if p.is_file() and "tmp" in p.name.lower()] == []


def test_worker_signal_handler_never_blocks_on_a_lock():
    """gdb stops the worker with SIGINT and, dying, sends PR_SET_PDEATHSIG's SIGTERM: the second
    handler ran inside the first one's Event.set() (holding its lock) and the worker hung for
    ever with its BPF programs attached.  Simulate 'interrupted inside set()' in a subprocess."""
    import subprocess
    code = ("import signal, sys; sys.path.insert(0, sys.argv[1])\n"
            "from gdb_toolkit.ktrace import worker\n"
            "with worker._stop._cond:\n"
            "    worker._on_signal(signal.SIGTERM, None)\n"
            "assert worker.stopping()\n"
            "print('handled')\n")
    repo = str(Path(__file__).resolve().parents[2])
    try:
        out = subprocess.run([sys.executable, "-c", code, repo], capture_output=True, text=True,
                             timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the signal handler blocked (deadlock)")
    assert out.stdout.strip() == "handled", out.stderr


# -- assembled programs ------------------------------------------------------------------------------
def test_bpf_instruction_encoding_matches_the_kernel_abi():
    """Byte patterns from the kernel's instruction-set document (little-endian)."""
    from gdb_toolkit.ktrace import bpf_insn as I

    a = I.Asm()
    a.movi(I.R0, 0).call(I.KTIME_GET_NS).ld_map(I.R1, "m").ldx(4, I.R2, I.R10, -8)
    a.jcci(I.JNE, I.R7, 4242, "out").alui(I.RSH, I.R7, 32).label("out")
    a.exit()
    code = I.encode(a.assemble(), {"m": 7})
    words = [code[i:i + 8].hex() for i in range(0, len(code), 8)]
    assert words == ["b700000000000000",          # mov64 r0, 0
                     "8500000005000000",          # call 5 (ktime_get_ns)
                     "1811000007000000", "0000000000000000",   # ld_imm64 r1, map fd 7 (src 1)
                     "61a2f8ff00000000",          # ldxw r2, [r10 - 8]
                     "5507010092100000",          # jne r7, 4242, +1
                     "7707000020000000",          # rsh64 r7, 32
                     "9500000000000000"]          # exit
    with pytest.raises(ValueError):
        I.encode(a.assemble(), {})                # a map without an fd
    with pytest.raises(ValueError):
        I.from_wire([[0x07, 16, 0, 0, 0, None]])  # register out of range


def test_codegen_reads_args_from_the_architectures_pt_regs():
    from gdb_toolkit.ktrace import bpf_codegen, bpf_insn as I

    cand = make_plan("expand_downwards", [], KernelCaps()).candidates[0]
    vals = resolve_values(parse_args_spec("a=arg0, b=arg1"), [], cand, None, None)
    for machine, offs in (("x86_64", (112, 104)), ("aarch64", (0, 8))):
        obj = bpf_codegen.generate(cand, vals, 42, True, False, machine, exclude=(7,))
        entry = obj.progs[0].insns
        loads = [i.off for i in entry if i.code == I.LDX | I.MEM | I.DW and i.src == I.R6]
        assert loads[:2] == list(offs), (machine, loads)
        assert [p.attach for p in obj.progs] == ["kprobe", "kretprobe"]
        assert {m.name for m in obj.maps} == {"gtk_kt_events", "gtk_kt_inflight"}
        # the pid filter and the exclusion are immediates compared with the tgid
        imms = [i.imm for i in entry if i.code & 0x07 == I.JMP and i.code & 0x08 == I.K]
        assert 42 in imms and 7 in imms
        ret = [i.off for i in obj.progs[1].insns if i.code == I.LDX | I.MEM | I.DW and i.src == I.R6]
        assert ret == [{"x86_64": 80, "aarch64": 0}[machine]]
    with pytest.raises(ToolkitError):           # a 7th argument is not in an x86_64 register
        resolve_values(parse_args_spec("x=arg6"), [], cand, None, None, max_reg_args=6)


def test_worker_decodes_a_comm_that_is_not_utf8_losslessly():
    """The event record's comm (bytes, as bpf_get_current_comm gives them; the layout is the C
    struct's: u64 time, task, retval, vals[1]; u32 pid, tid; s32 stack_id; u32 flags; char
    comm[16]) reads as every name in the toolkit: `\\xNN` and `\\\\`, never U+FFFD."""
    import struct as st

    from gdb_toolkit.ktrace.worker import decoder

    att = {"values": [{"name": "x", "kind": "arg", "unavailable": False, "signed": False}],
           "function": "vfs_read"}
    raw = st.pack("<QQQQIIiI", 1, 2, 0, 7, 42, 42, -1, 0) + b"ev\\il\xff".ljust(16, b"\0")
    ev = decoder(att)(raw, None, False)
    assert ev["comm"] == "ev\\\\il\\xff" and ev["pid"] == 42 and ev["args"] == {"x": 7}
