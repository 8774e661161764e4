"""The first call of every command, as bench/first_call.py times it and
tests/integration/test_foundation.py checks its imports: the programs (compiled here, and a
crafted kcore whose text is real x86_64 code) and the (label, set-up, program, command) cases."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def programs(tmp: Path) -> dict:
    from tests.support.gdbrun import compile_c
    from tests.support.kcore_fixture import write_code_kcore

    return {
        "hello": compile_c(REPO / "examples" / "plt" / "hello_calls.c", flags=["-g"]),
        "recurse": compile_c(REPO / "examples" / "stack" / "recurse.c", flags=["-g", "-O0"]),
        "vbits": compile_c(REPO / "examples" / "valgrind" / "vbits.c", flags=["-g", "-O0"]),
        **write_code_kcore(tmp),     # the kernel commands' crafted kcore (real x86_64 text)
    }


def cases(p: dict, tmp: Path) -> list[tuple[str, list[str], str | None, str]]:
    """(label, set-up commands, program, command)."""
    vg = [f"vg-start --main --stdout {tmp}/vg.out --log {tmp}/vg.log {p['vbits']}",
          "break checkpoint", "continue"]
    src = f"--kcore {p['kcore']} --kallsyms {p['kallsyms']}"
    return [
        ("toolkit commands", [], None, "toolkit commands"),
        ("toolkit doctor --quick", [], None, "toolkit doctor --quick"),
        ("got (file)", [], p["hello"], "got"),
        ("got (live)", ["start"], p["hello"], "got"),
        ("got --json", ["start"], p["hello"], "got --json"),
        ("plt", ["start"], p["hello"], "plt"),
        ("plt-walk puts", ["start"], p["hello"], "plt-walk puts"),
        ("stack-diagnose", ["run > /dev/null"], p["recurse"], "stack-diagnose"),
        ("ksym", [], None, "ksym do_sys_openat2"),
        ("ktypes", [], None, "ktypes"),
        ("ktask (no kcore here)", [], None, "ktask 1"),
        ("kcore (file)", [], None, f"kcore {p['kcore']} --kallsyms {p['kallsyms']}"),
        ("kdis (kcore)", [], None, f"kdis vfs_read 16 {src}"),
        ("kx (kcore)", [], None, f"kx linux_banner 64 {src}"),
        ("ksym (kcore)", [], None, f"ksym vfs_write {src}"),
        ("ftrace-site (kcore)", [], None, f"ftrace-site vfs_read {src}"),
        ("kprobe-show (kcore)", [], None, f"kprobe-show do_sys_openat2 {src}"),
        ("kprobe-list (kcore)", [], None, f"kprobe-list {src}"),
        # a report in a gdb that vg-start did not start (ends in its "no connection" error
        # here; a session attached by hand pays the same imports): no process modules
        ("vg-leaks (no session)", [], None, "vg-leaks"),
        ("vg-start", [], p["vbits"],
         f"vg-start --main --stdout {tmp}/vg1.out --log {tmp}/vg1.log {p['vbits']}"),
        ("vg-leaks", vg, None, "vg-leaks"),
        ("vg-vbits", vg, None, "vg-vbits g_buf 16"),
        ("vg-who", vg, None, "vg-who g_buf"),
        ("vg-block", vg, None, "vg-block g_buf"),
        ("vg-check", vg, None, "vg-check g_buf 16 defined"),
        ("vg-errors", vg, None, "vg-errors"),
        ("vg-watch", vg, None, "vg-watch 1 --count 1"),
    ]
