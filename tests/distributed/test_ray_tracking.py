"""Tracking calls inside remote steps land in the run; what was shipped and where it ran is
recorded; a step defined in a function (as in a notebook cell) travels by value."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import pytest
from ray_helpers import disconnect_ray

from loopml.execution.ray_executor import CONNECTION_FILE
from ray_cluster import RayCluster

pytestmark = pytest.mark.xdist_group("ray")

POINTS = 500

PIPELINES = {
    "dist_tracking": f"""
import loopml
from loopml import pipeline, step


@step
def chatty(n: int = {POINTS}) -> int:
    for i in range(n):
        loopml.log_metric("loss", 1.0 / (i + 1), step=i)
    loopml.log_metrics({{"acc": 0.9, "f1": 0.8}})
    loopml.log_param("depth", 7)
    loopml.set_tag("phase", "remote")
    loopml.log_artifact({{"weights": [1, 2, 3]}}, "notes")
    return n


@step
def after(n: int) -> int:
    loopml.log_metric("after", float(n))
    return n + 1


@pipeline(name="tracked")
def tracked(n: int = {POINTS}) -> None:
    after(chatty(n=n))
"""
}


def test_metrics_params_tags_and_artifacts_logged_remotely_all_land(
    ray_cluster: RayCluster, client: Any, pipeline_of: Any
) -> None:
    run = pipeline_of("tracked").run({}, executor=ray_cluster.address, client=client, cache=False)
    assert run.status == "succeeded"
    history = client.metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(POINTS))
    assert [p.value for p in history] == [1.0 / (i + 1) for i in range(POINTS)]
    record = client.run_record(run.id)
    assert {k: record.metrics[k] for k in ("acc", "f1", "after")} == {
        "acc": 0.9,
        "f1": 0.8,
        "after": float(POINTS),
    }
    assert record.params["depth"] == "7"
    assert record.tags["phase"] == "remote"
    logged = [link for link in client.links(run=run.id) if link.direction == "logged"]
    notes = [link for link in logged if link.name == "notes"]
    assert len(notes) == 1 and notes[0].step == "chatty"
    assert client.load_artifact(notes[0].digest) == {"weights": [1, 2, 3]}
    assert all(" node 127.0.0.1 (" in (s.host or "") for s in run.steps)


def test_the_code_and_environment_shipped_are_recorded(
    ray_cluster: RayCluster, client: Any, pipeline_of: Any, project: Path
) -> None:
    run = pipeline_of("tracked").run(
        {"n": 3}, executor=ray_cluster.address, client=client, cache=False
    )
    tags = client.run_record(run.id).tags
    assert tags["ray.address"] == ray_cluster.address
    assert tags["ray.nodes"] == "2"  # tags are stored as text
    assert tags["ray.version"]
    links = [link for link in client.links(run=run.id) if link.name == "ray.code"]
    assert len(links) == 1 and links[0].direction == "logged"
    code = client.load_artifact(links[0].digest)
    listing = code["listing"]
    local = (project / "dist_tracking.py").read_bytes()
    assert listing["dist_tracking.py"] == [len(local), hashlib.sha256(local).hexdigest()]
    assert "loopml.toml" in listing
    assert (project / ".loopml").is_dir()  # the store is in the project folder...
    assert not [name for name in listing if name.startswith(".loopml")]  # ...and never shipped
    home = {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and not {".loopml", "__pycache__"} & set(path.relative_to(project).parts)
    }
    assert set(listing) == home  # exactly the project's files, nothing of our own
    assert code["python"] == platform.python_version()
    assert tags["ray.code"].startswith(code["digest"][:12])

    store = client.metadata
    for s in run.steps:
        assert not s.cached and s.env_digest, s
        envs = store.db.read(lambda tx, d=s.env_digest: store.runs._load_environments(tx, {d}))
        env = envs[s.env_digest]
        assert env["python"] == platform.python_version()
        assert "loopml" in json.dumps(env["packages"])


def test_the_same_code_ships_again_right_after_a_connection_with_it_ended(
    ray_cluster: RayCluster, client: Any, pipeline_of: Any
) -> None:
    """Ray deletes a package once the last connection using it ends; a connection made right
    after, with the same files, must not be sent to fetch it (each ships its own)."""
    listings = []
    for _ in range(3):
        disconnect_ray()
        run = pipeline_of("tracked").run(
            {"n": 1}, executor=ray_cluster.address, client=client, cache=False
        )
        assert run.status == "succeeded"
        (link,) = [link for link in client.links(run=run.id) if link.name == "ray.code"]
        code = client.load_artifact(link.digest)
        assert CONNECTION_FILE not in code["listing"]  # the package's own name tag
        listings.append((code["digest"], code["listing"]))
    assert listings[0] == listings[1] == listings[2]  # the same files every time


def test_a_step_defined_in_a_function_runs_on_ray(ray_cluster: RayCluster, client: Any) -> None:
    """Like a notebook cell: the step is not importable on the workers, so it travels by value."""
    import os

    from loopml import pipeline, step

    offset = 1000

    @step
    def shifted(x: int) -> dict[str, int]:
        import os

        return {"value": x + offset, "pid": os.getpid()}

    @pipeline(name="cell")
    def cell(x: int = 5) -> None:
        shifted(x=x)

    run = cell.run({"x": 5}, executor=ray_cluster.address, client=client)
    assert run.status == "succeeded"
    result = run.output("shifted")
    assert result["value"] == 1005
    assert result["pid"] != os.getpid()
    (only,) = run.steps
    assert " node 127.0.0.1 (" in (only.host or "")
    assert f"pid {result['pid']}" in (only.host or "")
