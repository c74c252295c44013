"""Resources on Ray: custom resources choose the node, impossible asks fail at once, and
independent branches run at the same time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from loopml.errors import StepFailedError
from ray_cluster import RayCluster

pytestmark = pytest.mark.xdist_group("ray")

BRANCHES = 20

PIPELINES = {
    "dist_placement": f"""
import os
import time
from pathlib import Path

from loopml import pipeline, step


@step(resources={{"special": 1}}, cache=False)
def on_special() -> int:
    return os.getpid()


@step(cpus=1, cache=False)
def anywhere() -> int:
    return os.getpid()


@pipeline(name="placed")
def placed() -> None:
    on_special()
    anywhere()


@step(resources={{"gpu_rack": 1}})
def rack() -> int:
    return 1


@step(cpus=64)
def huge() -> int:
    return 1


@step(cache=False)
def fine() -> int:
    return 1


@pipeline(name="rack")
def rack_pipeline() -> None:
    fine()
    rack()


@pipeline(name="huge")
def huge_pipeline() -> None:
    huge()


def _sleeper(i):
    @step(name=f"sleep_{{i:02d}}", cpus=1, cache=False)
    def sleeper(folder: str) -> int:
        # Arrive, wait until every branch has arrived (only possible if all run at once),
        # then the 0.5 s of work.
        Path(folder, f"{{i}}.started").touch()
        deadline = time.monotonic() + 120
        while len(list(Path(folder).glob("*.started"))) < {BRANCHES}:
            if time.monotonic() > deadline:
                raise TimeoutError("not all branches ran at once")
            time.sleep(0.01)
        time.sleep(0.5)
        return i

    return sleeper


SLEEPERS = [_sleeper(i) for i in range({BRANCHES})]


@pipeline(name="fanout")
def fanout(folder: str) -> None:
    for sleeper in SLEEPERS:
        sleeper(folder=folder)
"""
}


def node_ids() -> dict[str, str]:
    """Node id -> "special" or "plain", from this process's Ray connection (made by a run)."""
    import ray

    return {
        n["NodeID"]: "special" if n["Resources"].get("special") else "plain"
        for n in ray.nodes()
        if n["Alive"]
    }


def node_of(host: str | None) -> str:
    """The 12-character node id in a step's ``host`` ("HOST node IP (NODEID12) pid PID")."""
    assert host and " node 127.0.0.1 (" in host, host
    return host.split("(", 1)[1].split(")", 1)[0]


def test_a_step_needing_a_custom_resource_runs_on_the_node_that_has_it(
    ray_cluster: RayCluster, client: Any, pipeline_of: Any
) -> None:
    run = pipeline_of("placed").run({}, executor=ray_cluster.address, client=client)
    assert run.status == "succeeded"
    nodes = node_ids()
    assert sorted(nodes.values()) == ["plain", "special"]
    (special,) = [node for node, kind in nodes.items() if kind == "special"]
    steps = {s.name: s for s in run.steps}
    assert special.startswith(node_of(steps["on_special"].host))
    assert f"pid {run.output('on_special')}" in (steps["on_special"].host or "")
    assert any(n.startswith(node_of(steps["anywhere"].host)) for n in nodes)  # either node


@pytest.mark.parametrize(
    ("pipeline", "step", "asked"), [("rack", "rack", "gpu_rack 1"), ("huge", "huge", "CPU 64")]
)
def test_a_step_no_node_can_hold_fails_at_once_naming_what_it_asked(
    pipeline: str, step: str, asked: str, ray_cluster: RayCluster, client: Any, pipeline_of: Any
) -> None:
    with pytest.raises(StepFailedError) as failed:
        pipeline_of(pipeline).run({}, executor=ray_cluster.address, client=client)
    record = client.run_record(failed.value.run_id)
    assert record.status == "failed"
    steps = {s.name: s for s in client.steps(record.id)}
    error = steps[step].error or ""
    assert steps[step].status == "failed"
    asks, _, offers = error.partition(" which no node of ")
    assert asks.startswith(f"LoopmlError: step {step!r} asks for ") and asked in asks
    assert offers.startswith(f"the Ray cluster at {ray_cluster.address} offers (nodes: ")
    assert "CPU 20, " in offers and "CPU 2, " in offers and "special 1" in offers
    assert not [link for link in client.links(run=record.id) if link.step == step]
    if pipeline == "rack":  # the independent branch already on the cluster was let finish
        assert steps["fine"].status == "succeeded"
    # This process's connection to the cluster survived the failure: the next run works.
    again = pipeline_of("placed").run({}, executor=ray_cluster.address, client=client)
    assert again.status == "succeeded"


def test_independent_branches_run_at_the_same_time(
    ray_cluster: RayCluster, client: Any, pipeline_of: Any, tmp_path: Path
) -> None:
    fanout = pipeline_of("fanout")
    timings = []
    for attempt in ("cold", "warm"):
        folder = tmp_path / attempt
        folder.mkdir()
        began = time.monotonic()
        run = fanout.run({"folder": str(folder)}, executor=ray_cluster.address, client=client)
        timings.append(f"{attempt} {time.monotonic() - began:.2f} s")
        assert run.status == "succeeded"
        steps = [s for s in run.steps if s.name.startswith("sleep_")]
        assert len(steps) == 20 and not any(s.cached for s in steps)
        starts = [s.started_at for s in steps if s.started_at is not None]
        ends = [s.ended_at for s in steps if s.ended_at is not None]
        assert len(starts) == len(ends) == 20
        assert max(starts) < min(ends), "the 20 branches did not all overlap"
        assert len({s.host for s in steps}) == 20  # 20 worker processes
    print(f"\n20 branches of 0.5 s on Ray, wall time per run: {', '.join(timings)}")
