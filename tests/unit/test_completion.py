"""common/completion.file_names: the toolkit's own path completion (gdb's completes the
whole argument text, so a path after an option completed nothing)."""
import os

from gdb_toolkit.common.completion import file_names


def test_file_names_lists_the_directory_of_the_last_part(tmp_path):
    (tmp_path / "saved.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").write_text("")
    os.mkfifo(tmp_path / "sa-fifo")
    assert file_names(f"{tmp_path}/sa") == [f"{tmp_path}/sa-fifo", f"{tmp_path}/saved.json"]
    assert file_names(f"{tmp_path}/") == [f"{tmp_path}/sa-fifo", f"{tmp_path}/saved.json", f"{tmp_path}/sub/"]
    assert file_names(f"{tmp_path}/.h") == [f"{tmp_path}/.hidden"]      # dot files when asked
    assert file_names(f"{tmp_path}/nope/x") == []


def test_file_names_relative_and_bounded(tmp_path, monkeypatch):
    for i in range(30):
        (tmp_path / f"f{i:02d}").write_text("")
    monkeypatch.chdir(tmp_path)
    assert file_names("f0") == [f"f0{i}" for i in range(10)]
    assert len(file_names("f", limit=7)) == 7


def test_file_names_of_undecodable_entries_do_not_raise(tmp_path):
    name = os.fsencode(str(tmp_path)) + b"/caf\xe9"
    open(name, "w").close()
    got = file_names(f"{tmp_path}/caf")
    assert len(got) == 1 and os.fsencode(got[0]) == name
