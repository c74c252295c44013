"""A parameter sweep on Ray: every trial a run whose steps are Ray tasks, grouped, best reported."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ray_helpers import run_loopml

from ray_cluster import RayCluster

pytestmark = pytest.mark.xdist_group("ray")

PIPELINES = {
    "tuning": """
import os

import loopml
from loopml import pipeline, step


@step
def fit(alpha: float, depth: int) -> dict:
    return {"loss": (alpha - 0.1) ** 2 + (depth - 4) ** 2, "pid": os.getpid()}


@step
def score(result: dict) -> float:
    loopml.log_metric("loss", result["loss"])
    return result["loss"]


@pipeline(name="tune")
def tune(alpha: float = 1.0, depth: int = 3) -> None:
    score(fit(alpha, depth))
"""
}


def test_a_grid_sweep_runs_every_trial_on_ray_and_reports_the_best(
    ray_cluster: RayCluster, client: Any
) -> None:
    done = run_loopml(
        "sweep",
        "tune",
        "-p",
        "alpha=0.1,1",
        "-p",
        "depth=3..5",
        "--metric",
        "loss",
        "--parallel",
        "4",
        "--no-cache",  # equal losses of two trials would otherwise share their `score` step
        "--on",
        ray_cluster.address,
        "--json",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    trials = result["trials"]
    assert len(trials) == 6 and all(t["status"] == "succeeded" for t in trials), trials
    combos = {(float(t["params"]["alpha"]), int(t["params"]["depth"])) for t in trials}
    assert combos == {(a, d) for a in (0.1, 1.0) for d in (3, 4, 5)}
    best = result["best"]
    assert (float(best["params"]["alpha"]), int(best["params"]["depth"])) == (0.1, 4)
    assert best["value"] == pytest.approx(0.0)

    grouped = client.search_runs(f"tags.sweep = '{result['id']}'")
    assert len(grouped) == 6
    for record in grouped:  # each trial a run on the cluster, its steps placed by Ray
        assert record.executor == "ray" and record.tags["ray.address"] == ray_cluster.address
        steps = client.steps(record.id)
        assert all(s.host and " node 127.0.0.1 " in s.host for s in steps), steps
