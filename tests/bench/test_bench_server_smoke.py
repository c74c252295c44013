"""Smoke test for ``bench/server.py``: ``--quick`` exits 0 and prints each figure once.

Figures are never asserted (see ``test_bench_smoke.py``); only that the script still runs
and its lines are well formed, with a verdict at the end of each.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "server.py"
FIGURES = [
    "GET /api/runs over 2,000 runs (filtered, sorted, first page)",
    "8 readers of GET /api/runs while 4 processes log metrics",
    "server start-up, whole process to first 200 on /health",
]
VERDICT = r"(MET|MISSED|n/a \(--quick\)|\(info\))"


def test_server_bench_runs_quick(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    for figure in FIGURES:
        lines = [line for line in done.stdout.splitlines() if line.startswith(figure + ":")]
        assert len(lines) == 1, f"{figure!r} not printed once:\n{done.stdout}"
        assert re.search(VERDICT + r"$", lines[0]), lines[0]
    assert "0 errors" in done.stdout and "0 crashed" in done.stdout, done.stdout
