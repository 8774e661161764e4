"""Issue 11 item 2 and the helper-process audit: every helper interpreter the toolkit starts
runs isolated, whatever the directory and environment gdb was started with."""
import json
import os

import pytest

from tests.support.gdbrun import run_gdb

PLANT = """import os
open(os.environ.get("GTK_MARKER", "/dev/null"), "a").write(__name__ + "\\n")
"""


@pytest.fixture
def planted_cwd(tmp_path):
    """A directory (as in a cloned tree) carrying modules a root python3 -c would import."""
    d = tmp_path / "clone"
    d.mkdir()
    for mod in ("json", "bcc", "os2", "sitecustomize", "usercustomize", "runpy"):
        (d / f"{mod}.py").write_text(PLANT)
    marker = tmp_path / "marker"
    return d, marker


def test_doctor_bcc_probe_does_not_import_from_cwd(planted_cwd, monkeypatch):
    from gdb_toolkit.doctor.host_facts import probe_bcc

    d, marker = planted_cwd
    monkeypatch.chdir(d)
    monkeypatch.setenv("GTK_MARKER", str(marker))
    monkeypatch.setenv("PYTHONPATH", str(d))
    version, err = probe_bcc(compile_it=False)
    assert not marker.exists(), marker.read_text()
    assert version and err == "not checked (--quick)"


def test_doctor_bcc_probe_drops_loader_variables(tmp_path, monkeypatch):
    """LD_PRELOAD of the caller must not reach the helper (ld.so would complain on stderr and
    the probe's error line would show it)."""
    from gdb_toolkit.doctor import host_facts

    seen = {}
    from gdb_toolkit.common import helper_process

    orig = helper_process.run_helper

    def spy(argv, **kw):
        seen["env"] = kw.get("env")
        seen["cwd"] = kw.get("cwd", "/")
        seen["argv"] = argv
        return orig(argv, **kw)

    monkeypatch.setattr(helper_process, "run_helper", spy)
    monkeypatch.setenv("LD_PRELOAD", str(tmp_path / "evil.so"))
    monkeypatch.setenv("PYTHONSTARTUP", str(tmp_path / "x.py"))
    host_facts.probe_bcc(compile_it=False, env={"BCC_KERNEL_SOURCE": "/usr/src/x"})
    assert "LD_PRELOAD" not in seen["env"] and "PYTHONSTARTUP" not in seen["env"]
    assert seen["env"]["BCC_KERNEL_SOURCE"] == "/usr/src/x"
    assert seen["argv"][1] == "-I" and seen["cwd"] == "/"


@pytest.mark.gdb
def test_toolkit_doctor_in_a_hostile_directory(planted_cwd):
    """The attack of item 2 end to end: root starts gdb in a cloned tree and runs the doctor."""
    d, marker = planted_cwd
    res = run_gdb(["toolkit doctor --quick --json", "echo ALIVE\\n"], cwd=d,
                  env={"GTK_MARKER": str(marker)}, timeout=180)
    assert "ALIVE" in res.stdout, res.output
    assert not marker.exists(), f"planted module ran: {marker.read_text()}"
