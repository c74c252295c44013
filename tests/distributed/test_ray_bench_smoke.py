"""Smoke test for ``bench/distributed.py``: with ``--quick`` on the tests' loopback Ray cluster
(``--address``, so no second cluster is started), every figure is printed, well formed.

One process runs all four benchmarks: they share one connection to the cluster, as they
do when a person runs the script. Figures are never asserted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PIPELINES: dict[str, str] = {}  # the module's project (tests/distributed/conftest.py): none needed

BENCH = Path(__file__).resolve().parents[2] / "bench" / "distributed.py"
TIMEOUT_S = 600
pytestmark = [pytest.mark.timeout(TIMEOUT_S + 60), pytest.mark.xdist_group("ray")]

FIGURES = [
    "connect to the cluster (Ray Client) and ship the project",
    "per step, chain of 3 trivial steps, local executor, best of 3",
    "per step, chain of 3 trivial steps, Ray, best of 3",
    "Ray's overhead per step over local",
    "4-way fan-out of 0.5 s steps on Ray, first (cold) run",
    "4-way fan-out of 0.5 s steps on Ray, warm, best of 5",
    "grid sweep of 4 trials (2 steps each, 0.2 s of work), --parallel 8 on Ray",
    "`loopml run fan` (4 x 0.5 s) --on ray, whole process, best of 1",
    "`loopml run fan` (4 x 0.5 s) --on local, whole process, best of 1",
]
VERDICT = r"(MET|MISSED|n/a \(--quick\)|\(info\))"


def test_quick_distributed_benchmark_prints_every_figure(tmp_path: Path, ray_cluster: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPML_", "RAY_ADDRESS"))}
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--address", ray_cluster.address],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for name in FIGURES:
        pattern = re.compile(rf"^{re.escape(name)}: .+ {VERDICT}$")
        assert any(pattern.match(line) for line in lines), (
            f"no line for {name!r} in:\n{done.stdout}"
        )
    assert len([line for line in lines if not line.startswith("#")]) == len(FIGURES), done.stdout
