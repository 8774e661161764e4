"""Run a benchmark here and, unless --no-guest, again inside the QEMU guest (its JSON result
comes back on a 'BENCH ' line), printing both with the same *show*."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def here_and_in_guest(script: str, here, show) -> None:
    if "--here" in sys.argv:
        print("BENCH " + json.dumps(here()), flush=True)
        return
    show(here())
    if "--no-guest" in sys.argv:
        return
    proc = subprocess.run([sys.executable, "-m", "tests.guest", "run", "--timeout", "2400", "--",
                           "/usr/bin/python3", str(REPO / "bench" / script), "--here"],
                          cwd=REPO, capture_output=True, text=True)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("BENCH ")), None)
    if line:
        show(json.loads(line[6:]))
    else:
        print(f"guest run failed: {proc.stderr.strip()[-300:]}")
