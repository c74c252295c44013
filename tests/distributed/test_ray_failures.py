"""A worker killed mid-step (retried, or the run fails naming node and cause); a step past its
timeout is stopped and its worker process ends."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from ray_helpers import wait_for, wait_gone

from loopml.errors import StepFailedError
from ray_cluster import RayCluster

pytestmark = pytest.mark.xdist_group("ray")

TIMEOUT_S = 5

PIPELINES = {
    "dist_failures": f"""
TIMEOUT_S = {TIMEOUT_S}
import os
import time
from pathlib import Path

from loopml import pipeline, step


def hold(folder: str) -> str:
    # A second attempt finds the first one's marker and returns; the first one says where it
    # is and waits for a "go" that never comes (the test kills it).
    here = Path(folder)
    if (here / "marker").exists():
        return "second attempt"
    (here / "marker").write_text("first attempt started")
    (here / "pid.tmp").write_text(str(os.getpid()))
    (here / "pid.tmp").rename(here / "pid")
    deadline = time.monotonic() + 240
    while not (here / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("nobody killed me")
        time.sleep(0.05)
    return "first attempt"


@step(retries=1, cache=False)
def sturdy(folder: str) -> str:
    return hold(folder)


@step(retries=0, cache=False)
def fragile(folder: str) -> str:
    return hold(folder)


@step(cache=False)
def downstream(text: str) -> str:
    return text.upper()


@pipeline(name="sturdy")
def sturdy_pipeline(folder: str) -> None:
    downstream(sturdy(folder=folder))


@pipeline(name="fragile")
def fragile_pipeline(folder: str) -> None:
    downstream(fragile(folder=folder))


@step(cache=False)
def ready() -> int:
    return os.getpid()


@pipeline(name="ready")
def ready_pipeline() -> None:
    ready()


@step(timeout=TIMEOUT_S, cache=False)
def slow(folder: str) -> str:
    (Path(folder) / "pid.tmp").write_text(str(os.getpid()))
    (Path(folder) / "pid.tmp").rename(Path(folder) / "pid")
    time.sleep(600)
    return "never"


@pipeline(name="slow")
def slow_pipeline(folder: str) -> None:
    slow(folder=folder)
"""
}

WORKER_DIED = "WorkerCrashedError"


def kill_when_started(folder: Path) -> tuple[threading.Thread, list[int]]:
    """In the background: wait for the step's pid file, then SIGKILL that worker process."""
    killed: list[int] = []

    def kill() -> None:
        pid_file = folder / "pid"
        wait_for(pid_file.exists, f"{pid_file} (the step to start)", 180)
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread, killed


def test_a_killed_worker_is_retried_and_the_run_succeeds(
    ray_cluster: RayCluster, client: Any, pipeline_of: Any, tmp_path: Path
) -> None:
    thread, killed = kill_when_started(tmp_path)
    run = pipeline_of("sturdy").run(
        {"folder": str(tmp_path)}, executor=ray_cluster.address, client=client
    )
    thread.join(10)
    assert killed, "the step never wrote its pid"
    assert run.status == "succeeded"
    assert run.output("downstream") == "SECOND ATTEMPT"
    step = {s.name: s for s in run.steps}["sturdy"]
    assert step.attempts == 2
    assert step.reason is not None
    (failure,) = step.reason["failed_attempts"]
    assert failure["attempt"] == 1
    assert "node 127.0.0.1 (" in failure["host"] and f"pid {killed[0]}" in failure["host"]
    assert f"step 'sturdy' was lost on {failure['host']}" in failure["error"]
    assert WORKER_DIED in failure["error"] and "worker died" in failure["error"]
    assert f"pid {killed[0]}" not in (step.host or "")  # the second attempt ran elsewhere
    assert " node 127.0.0.1 (" in (step.host or "")


def test_a_killed_worker_without_retries_fails_the_run_naming_node_and_cause(
    ray_cluster: RayCluster, client: Any, pipeline_of: Any, tmp_path: Path
) -> None:
    thread, killed = kill_when_started(tmp_path)
    artifacts_before = {a.digest for a in client.list_artifacts(limit=100_000)}
    with pytest.raises(StepFailedError) as failed:
        pipeline_of("fragile").run(
            {"folder": str(tmp_path)}, executor=ray_cluster.address, client=client
        )
    thread.join(10)
    assert killed, "the step never wrote its pid"
    record = client.run_record(failed.value.run_id)
    assert record.status == "failed"
    steps = {s.name: s for s in client.steps(record.id)}
    step = steps["fragile"]
    assert step.status == "failed" and step.attempts == 1
    assert " node 127.0.0.1 (" in (step.host or "") and f"pid {killed[0]}" in (step.host or "")
    error = step.error or ""
    assert f"step 'fragile' was lost on {step.host}" in error
    assert WORKER_DIED in error and "worker died" in error
    assert steps["downstream"].status == "skipped"
    links = client.links(run=record.id)
    assert not [link for link in links if link.step in ("fragile", "downstream")]
    assert not [link for link in links if link.direction == "output"]
    # The only artifact the run may add is its record of the code shipped (``ray.code``,
    # new when this is the first run of this project on the cluster).
    listing = {link.digest for link in links if link.name == "ray.code"}
    after = {a.digest for a in client.list_artifacts(limit=100_000)}
    assert after - listing == artifacts_before - listing


def test_a_step_past_its_timeout_is_stopped_and_its_worker_ends(
    ray_cluster: RayCluster, client: Any, pipeline_of: Any, tmp_path: Path
) -> None:
    # The timeout counts from submission: a warm worker makes sure the step itself starts
    # well within it (and so has a pid to check), even on a loaded machine.
    assert pipeline_of("ready").run({}, executor=ray_cluster.address, client=client).status == (
        "succeeded"
    )
    with pytest.raises(StepFailedError) as failed:
        pipeline_of("slow").run(
            {"folder": str(tmp_path)}, executor=ray_cluster.address, client=client
        )
    assert f"ran past its timeout of {TIMEOUT_S}s" in str(failed.value)
    step = client.steps(failed.value.run_id)[0]
    assert step.status == "failed"
    assert (tmp_path / "pid").exists(), f"the step never started: {step.error}"
    assert f"step 'slow' ran past its timeout of {TIMEOUT_S}s on " in (step.error or "")
    assert client.run_record(failed.value.run_id).status == "failed"
    pid = int((tmp_path / "pid").read_text())
    assert f"pid {pid}" in (step.host or "")
    wait_gone(pid)
