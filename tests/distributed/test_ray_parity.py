"""Parity and the cache: the `loopml init` template on local and on Ray gives the same outputs.

Everything here goes through the real ``loopml`` command (a subprocess per run), in the
project ``loopml init`` creates, with one extra pipeline appended: Ridge fitted directly on a
DataFrame loaded from the store (the case a Parquet block-layout bug once broke).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from ray_helpers import run_loopml

from ray_cluster import RayCluster

pytestmark = pytest.mark.xdist_group("ray")

INIT_PROJECT = True
PIPELINES = {
    "pipelines": '''

@step
def patients() -> pd.DataFrame:
    """Several blocks: the bundled frame plus derived columns (one float32), added one by one."""
    from sklearn.datasets import load_diabetes

    df = load_diabetes(as_frame=True).frame.rename(columns={"target": TARGET})
    df["bmi2"] = df["bmi"] ** 2
    df["age_bp"] = (df["age"] * df["bp"]).astype("float32")
    return df


@step
def fit_ridge(df: pd.DataFrame, alpha: float = 0.5) -> Ridge:
    from sklearn.linear_model import Ridge

    return Ridge(alpha=alpha).fit(df.drop(columns=[TARGET]), df[TARGET])


@pipeline(name="ridge")
def ridge_pipeline(alpha: float = 0.5) -> None:
    fit_ridge(patients(), alpha=alpha)
'''
}


def loopml_json(*args: str) -> Any:
    done = run_loopml(*args, "--json")
    assert done.returncode == 0, f"loopml {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


def steps_of(client: Any, run_id: str) -> dict[str, Any]:
    return {s.name: s for s in client.steps(run_id)}


@pytest.mark.parametrize("pipeline", ["train", "ridge"])
def test_local_and_ray_runs_give_identical_output_digests(
    pipeline: str, ray_cluster: RayCluster, client: Any
) -> None:
    local = loopml_json("run", pipeline, "--on", "local", "--no-cache")
    remote = loopml_json("run", pipeline, "--on", ray_cluster.address, "--no-cache")
    assert local["status"] == remote["status"] == "succeeded"
    assert local["outputs"] and remote["outputs"] == local["outputs"]
    # The Ray run really ran every step on the cluster, the local one in this machine's process.
    ray_steps = steps_of(client, remote["id"])
    assert all(" node 127.0.0.1 (" in (s.host or "") for s in ray_steps.values()), ray_steps
    assert not any(s.cached for s in ray_steps.values())
    assert client.run_record(remote["id"]).executor == "ray"
    assert client.run_record(local["id"]).executor == "local"

    done = run_loopml("runs", "compare", local["id"], remote["id"])
    assert done.returncode == 0, done.stderr
    n = len(local["outputs"])
    assert f"Outputs: identical in every run ({n} of {n} digests equal)." in done.stdout
    compared = loopml_json("runs", "compare", local["id"], remote["id"])
    assert compared["outputs_identical"] is True
    assert not [row for row in compared["different"] if row.startswith("outputs.")]


def test_a_ray_runs_outputs_are_reused_by_the_next_ray_run_and_by_a_local_run(
    ray_cluster: RayCluster, client: Any
) -> None:
    remote = loopml_json("run", "train", "--on", ray_cluster.address, "-p", "alpha=0.7")
    assert remote["cached_steps"] < remote["steps"]  # train and evaluate ran on Ray
    ran_on_ray = {s.name for s in client.steps(remote["id"]) if not s.cached}
    assert {"train", "evaluate"} <= ran_on_ray

    # Again on Ray: all cached, nothing sent to the cluster, the metrics replayed.
    again = loopml_json("run", "train", "--on", ray_cluster.address, "-p", "alpha=0.7")
    assert again["status"] == "succeeded"
    assert again["cached_steps"] == again["steps"] == 4
    assert again["outputs"] == remote["outputs"]
    assert again["metrics"] == remote["metrics"]  # replayed from the Ray run's steps
    for s in client.steps(again["id"]):
        assert s.cached and s.status == "succeeded"
        assert not s.host, f"cached step {s.name} names a host: {s.host!r}"
        assert not s.env_digest

    # Locally: the same cache, so the steps that ran on Ray are taken from that run.
    local = loopml_json("run", "train", "--on", "local", "-p", "alpha=0.7")
    assert local["cached_steps"] == local["steps"] == 4
    assert local["outputs"] == remote["outputs"]
    for s in client.steps(local["id"]):
        if s.name in ran_on_ray:
            assert s.reason is not None and s.reason["run"] == remote["run"], s.reason
