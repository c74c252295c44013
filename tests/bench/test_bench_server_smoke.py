"""Smoke test for ``bench/server.py`` and ``bench/ui.py``: ``--quick`` exits 0 and prints each
figure once.

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
UI_BENCH = BENCH.with_name("ui.py")
FIGURES = [
    "GET /api/runs over 2,000 runs (filtered, sorted, first page)",
    "8 readers of GET /api/runs while 4 processes log metrics",
    "server start-up, whole process to first 200 on /health",
]
SCHEDULER_FIGURES = [
    "scheduler fire-to-start delay (due time to the run's started_at)",
    "exactly once, 2 scheduler processes, 200 fire times",
]
VERDICT = r"(MET|MISSED|n/a \(--quick\)|\(info\))"


def _quick(
    tmp_path: Path, only: str, timeout: float, script: Path = BENCH
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--only", only],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done


def _printed_once(stdout: str, figures: list[str]) -> None:
    for figure in figures:
        lines = [line for line in stdout.splitlines() if line.startswith(figure + ":")]
        assert len(lines) == 1, f"{figure!r} not printed once:\n{stdout}"
        assert re.search(VERDICT + r"$", lines[0]), lines[0]


def test_server_bench_runs_quick(tmp_path: Path) -> None:
    done = _quick(tmp_path, "list,mixed,startup", 240)
    _printed_once(done.stdout, FIGURES)
    assert "0 errors" in done.stdout and "0 crashed" in done.stdout, done.stdout


def test_server_bench_scheduler_section_runs_quick(tmp_path: Path) -> None:
    done = _quick(tmp_path, "scheduler", 60)
    _printed_once(done.stdout, SCHEDULER_FIGURES)
    assert "/ started 200 /" in done.stdout, done.stdout


def test_ui_bench_runs_quick(tmp_path: Path) -> None:
    done = _quick(tmp_path, "pages", 240, UI_BENCH)
    _printed_once(
        done.stdout,
        [
            "UI /runs over 1,000 runs, first contentful paint",
            "UI /runs?filter=…&sort=metrics.rmse over 1,000 runs, first contentful paint",
            "UI pages not built yet",
        ],
    )
    assert "HTML " in done.stdout and "status 200" in done.stdout, done.stdout
