"""Smoke test for ``bench/core.py``: the benchmark script runs and prints every figure.

Figures are never asserted (budgets are judged by people reading the output), but the
script must not rot: ``--quick`` has to exit 0 and print one well-formed line per figure.
Two checks inside the script are about correctness, not speed, and are asserted: no
logged metric point may be lost, and the runs query must return the right runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "core.py"

FIGURES = [
    "import loopml",
    "loopml --help",
    "10 tiny steps in-process, cache miss",
    "10 tiny steps in-process, all cached",
    "10 tiny steps in-process, int steps (JSON outputs)",
    "10 tiny steps, whole `python pipeline.py` process, cold (every step misses)",
    "10 tiny steps, whole `python pipeline.py` process, every step cached",
    "10 tiny steps, whole process, Hamilton (cold / every step cached)",
    "10 tiny steps, whole process, first run in a new project (creates the store)",
    "metric logging (run.log_metric)",
    "metric logging (run.log_metrics)",
    "runs query over 1,000 runs",
    "runs query over 10,000 runs",
    "create a run (client.start_run, 10 params + 5 metrics, ended)",
    "create a run (loopml.start_run, default client, 10 params + 5 metrics, ended)",
    "create a run, MLflow (mlflow.start_run + log_params + log_metrics)",
    "search 1,000 runs returning ~500 with params and metrics (Client.search_runs)",
    "search 1,000 runs returning ~500 with params and metrics (loopml.runs(), DataFrame)",
    "runs.get by full id at 20,000 runs",
    "runs.get by 8-char prefix at 20,000 runs",
    "gc --dry-run over a store of 10,000 blobs",
    "gc over a store of 10,000 blobs",
    "artifact put, bytes object (put_value, as log_artifact does)",
    "artifact put, bytes object (put_bytes)",
    "artifact put, file (put_file)",
    "artifact get, verified (get_bytes)",
    "artifact get, verified (get_value of a bytes artifact, as loopml.load does)",
    "100,000 x 20 DataFrame through 10 steps, cold (persisted + hashed)",
    "100,000 x 20 DataFrame through 10 steps, all cached",
    "20 independent 0.05 s steps -> join, whole process, default workers",
    "20 independent 0.05 s steps -> join, whole process, workers=20",
]
VERDICT = r"(MET|MISSED|n/a \(--quick\)|\(info\))"


def test_quick_benchmark_prints_every_figure(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["TMPDIR"] = str(tmp_path)  # every temp project and store lands in the test's folder
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for name in FIGURES:
        pattern = re.compile(rf"^{re.escape(name)}: .+ {VERDICT}$")
        assert any(pattern.match(line) for line in lines), (
            f"no line for {name!r} in:\n{done.stdout}"
        )
    figure_lines = [line for line in lines if not line.startswith("#")]
    assert len(figure_lines) == len(FIGURES), done.stdout
    assert "POINTS LOST" not in done.stdout
    assert "WRONG RESULT" not in done.stdout
