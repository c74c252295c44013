"""Smoke test for ``bench/core.py``, ``data.py``, ``eval.py``, ``monitoring.py`` and ``serving.py``: each runs and prints every figure.

Figures are never asserted (budgets are judged by people reading the output), but the
script must not rot: ``--quick`` has to exit 0 and print one well-formed line per figure.
Two checks inside the script are about correctness, not speed, and are asserted: no
logged metric point may be lost, and the runs query must return the right runs.

Each benchmark runs in its own process (``--only NAME``), so no single test waits for the
whole script (about a minute idle, several on a busy 2-core machine) and pytest-xdist can
spread them. The timeout only catches a hung benchmark. The slowest, ``steps``, takes
~22 s idle but started ~12 Python processes that import pandas, and took 240 s at load
average 13 on 2 cores; so the timeout is 9 min, above the suite's usual 5.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
TIMEOUT_S = 540
pytestmark = pytest.mark.timeout(TIMEOUT_S + 60)

FIGURES = {
    "startup": ["import loopml", "loopml --help"],
    "steps": [
        "10 tiny steps in-process, cache miss",
        "10 tiny steps in-process, all cached",
        "10 tiny steps in-process, int steps (JSON outputs)",
        "10 tiny steps, whole `python pipeline.py` process, cold (every step misses)",
        "10 tiny steps, whole `python pipeline.py` process, every step cached",
        "10 tiny steps, whole process, Hamilton (cold / every step cached)",
        "10 tiny steps, whole process, first run in a new project (creates the store)",
    ],
    "metrics": ["metric logging (run.log_metric)", "metric logging (run.log_metrics)"],
    "query": ["runs query over 1,000 runs", "runs query over 10,000 runs"],
    "create": [
        "create a run (client.start_run, 10 params + 5 metrics, ended)",
        "create a run (loopml.start_run, default client, 10 params + 5 metrics, ended)",
        "create a run, MLflow (mlflow.start_run + log_params + log_metrics)",
    ],
    "search": [
        "search 1,000 runs returning ~500 with params and metrics (Client.search_runs)",
        "search 1,000 runs returning ~500 with params and metrics (loopml.runs(), DataFrame)",
    ],
    "get": [
        "runs.get by full id at 20,000 runs",
        "runs.get by 8-char prefix at 20,000 runs",
    ],
    "gc": ["gc --dry-run over a store of 10,000 blobs", "gc over a store of 10,000 blobs"],
    "artifacts": [
        "artifact put, bytes object (put_value, as log_artifact does)",
        "artifact put, bytes object (put_bytes)",
        "artifact put, file (put_file)",
        "artifact get, verified (get_bytes)",
        "artifact get, verified (get_value of a bytes artifact, as loopml.load does)",
    ],
    "dataframe": [
        "100,000 x 20 DataFrame through 10 steps, cold (persisted + hashed)",
        "100,000 x 20 DataFrame through 10 steps, all cached",
    ],
    "fanout": [
        "20 independent 0.05 s steps -> join, whole process, default workers",
        "20 independent 0.05 s steps -> join, whole process, workers=20",
    ],
}
DATA_FIGURES = {
    "add": [
        "data add, a 64 MiB file",
        "data add, the same 64 MiB file again (no new version)",
        "`loopml data add` of a 64 MiB file, whole process",
    ],
    "profile": [
        "profile of a 100,000 × 20 Arrow table (median of 3)",
        "profile of a 100,000 × 20 Parquet file, read included (median of 3)",
        "profile JSON stored with a 100,000 × 20 version",
    ],
    "validate": [
        "validate 100,000 rows x 20 columns (pandas DataFrame, 4 violations)",
        "validate 100,000 rows x 20 columns (pyarrow Table)",
    ],
    "drift": [
        "drift report, 100,000 x 20 (10 numeric, 10 categorical), pandas in",
        "drift report, CPU time (all threads)",
    ],
    "remote": [
        "push of 16 MiB in 4 blobs to S3 on loopback (moto)",
        "push verification (read back + SHA-256) of 16 MiB in 4 blobs",
        "pull of 16 MiB in 4 blobs from S3 on loopback (moto)",
        "push again, nothing missing (4 blobs)",
    ],
}
EVAL_FIGURES = {
    "bootstrap": [
        "bootstrap of the 6 binary metrics (compute + bootstrap)",
        "bootstrap CPU time (all threads)",
        "bootstrap peak RSS (whole process)",
        "naive loop over scikit-learn's metric functions, same data",
    ],
    "paired": ["paired bootstrap of two models, 6 binary metrics"],
    "cli": [
        "`loopml eval` of a stored model, whole process",
        "`loopml eval` again, stored result, whole process",
    ],
}
MONITORING_FIGURES = {
    "window": [
        "window_statistics, best of 3",
        "window_statistics, first call (its imports included)",
        "window_statistics CPU time (all threads), median of 3",
        "window_statistics drifted features",
    ],
    "process": [
        "window_statistics, whole `python -c` process (import, read Parquet, compute, JSON)"
    ],
    "evidently": [],  # skipped: the smoke never creates the Evidently venv
}
SCRIPTS = {
    "core.py": FIGURES,
    "data.py": DATA_FIGURES,
    "eval.py": EVAL_FIGURES,
    "monitoring.py": MONITORING_FIGURES,
}
EXTRA_ARGS = {"monitoring.py": ["--no-evidently"]}
VERDICT = r"(MET|MISSED|n/a \(--quick\)|\(info\))"


def _bench(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["TMPDIR"] = str(tmp_path)  # every temp project and store lands in the test's folder
    return subprocess.run(
        [sys.executable, str(BENCH_DIR / script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_the_smoke_covers_every_benchmark(tmp_path: Path, script: str) -> None:
    done = _bench(tmp_path, script, "--only", "no-such-benchmark")
    assert done.returncode == 2, done.stdout + done.stderr
    choices = re.search(r"choose from (.+)$", done.stderr.strip())
    assert choices, done.stderr
    assert choices.group(1).split(", ") == list(SCRIPTS[script])


@pytest.mark.parametrize(
    ("script", "benchmark"), [(s, b) for s, figures in SCRIPTS.items() for b in figures]
)
def test_quick_benchmark_prints_every_figure(tmp_path: Path, script: str, benchmark: str) -> None:
    figures = SCRIPTS[script][benchmark]
    done = _bench(tmp_path, script, "--quick", "--only", benchmark, *EXTRA_ARGS.get(script, []))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for name in figures:
        pattern = re.compile(rf"^{re.escape(name)}: .+ {VERDICT}$")
        assert any(pattern.match(line) for line in lines), (
            f"no line for {name!r} in:\n{done.stdout}"
        )
    figure_lines = [line for line in lines if not line.startswith("#")]
    assert len(figure_lines) == len(figures), done.stdout
    assert "POINTS LOST" not in done.stdout
    assert "WRONG RESULT" not in done.stdout


SERVING_SECTIONS = ["online", "batches", "scoring", "onnx", "logging"]


@pytest.mark.parametrize("section", SERVING_SECTIONS)
def test_quick_serving_benchmark_prints_every_figure(tmp_path: Path, section: str) -> None:
    """``bench/serving.py`` guards each figure so one failure does not hide the rest; here a
    guarded failure ("failed: ...") fails the smoke as a crash would."""
    # One model (the mixed-type classifier: every code path) and 0.3 s per load measurement:
    # the smoke checks that every figure is printed, not its size.
    done = _bench(
        tmp_path,
        "serving.py",
        "--quick",
        "--seconds",
        "0.3",
        "--models",
        "churn",
        "--only",
        section,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed:" not in done.stdout and "Traceback" not in done.stdout + done.stderr, (
        done.stdout + done.stderr
    )
    figure_lines = [line for line in done.stdout.splitlines() if not line.startswith("#")]
    assert len(figure_lines) >= 2, done.stdout
    for line in figure_lines:
        assert re.match(rf"^[^:]+: .+ {VERDICT}$", line), line
