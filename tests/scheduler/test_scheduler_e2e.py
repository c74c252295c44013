"""The real path: schedules fire real pipelines in child processes of a real scheduler.

A scheduled run is an ordinary run (tracked, tagged with its schedule); a timeout stops
the run and fails the fire after its retries; ``kill -9`` of the scheduler during a run
leaves the fire and its run ``crashed`` (never started again), and after a restart the
next fire time runs once. Every wait polls the store with a generous deadline.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli_runner import run_cli
from loopml.scheduler import schedules as lib
from loopml.scheduler.loop import Scheduler
from loopml.store.status import FireStatus, RunStatus
from loopml.tracking.client import Client

PIPELINES = """
from __future__ import annotations

import time
from pathlib import Path

from loopml import pipeline, step


@step
def measure(region: str) -> int:
    return len(region)


@pipeline
def score(region: str = "south"):
    return measure(region=region)


@step
def hold(tag: str) -> int:
    Path(f"started-{time.time_ns()}").write_text(tag)
    deadline = time.monotonic() + 120  # never hang a test run for ever
    while not Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return 1


@pipeline
def slow(tag: str = "x"):
    return hold(tag=tag)
"""


def _until(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _scheduler(project: Path) -> subprocess.Popen[str]:
    exe = Path(sys.executable).parent / "loopml"
    return subprocess.Popen(
        [str(exe), "scheduler", "--tick", "0.2", "--lease", "2"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _fires(client: Client, name: str) -> list[Any]:
    return [v.fire for v in client.metadata.schedules.fires.history(name, limit=500)]


def test_a_scheduled_run_is_an_ordinary_run_tagged_with_its_schedule(project: Path) -> None:
    (project / "pipelines.py").write_text(PIPELINES)
    added = run_cli(
        "schedule", "add", "weekly-score", "--pipeline", "score", "--cron", "0 6 * * MON",
        "-p", "region=north", "--timeout", "2m", "--retries", "2", cwd=project,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    now = run_cli("schedule", "run-now", "weekly-score", cwd=project)
    assert now.returncode == 0, now.stderr
    client = Client().open()
    proc = _scheduler(project)
    try:
        done = _until(
            "a succeeded fire",
            lambda: [f for f in _fires(client, "weekly-score") if f.status == FireStatus.SUCCEEDED],
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    fire = done[0]
    run = client.run_record(fire.run_id)
    assert run.status == RunStatus.SUCCEEDED
    assert run.pipeline == "score"
    assert run.params["region"] == "north"
    assert run.tags["schedule"] == "weekly-score"
    assert run.tags["schedule.fire"] == str(fire.id)
    assert run.tags["schedule.due"].endswith("Z")
    listed = run_cli("schedules", "--json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "weekly-score" and not row["paused"] and row["next_fire"]
    assert row["last_status"] == "succeeded" and row["last_run_id"] == fire.run_id
    assert row["last_duration_s"] > 0
    shown = run_cli("schedule", "show", "weekly-score", "--json", cwd=project)
    assert any(f["run_id"] == fire.run_id for f in json.loads(shown.stdout)["fires"])


def test_kill_9_of_the_scheduler_mid_run_crashes_that_fire_and_the_next_runs_once(
    project: Path,
) -> None:
    (project / "pipelines.py").write_text(PIPELINES)
    client = Client().open()
    record = lib.make_record("nightly", pipeline="slow", cron="*/3 * * * * *", catchup="skip")
    lib.add(client, record)
    first = _scheduler(project)
    try:
        _until("a run in flight", lambda: list(project.glob("started-*")))
        (running,) = _until(
            "its fire running with a run",
            lambda: [f for f in _fires(client, "nightly") if f.run_id][:1],
        )
    finally:
        first.kill()  # SIGKILL: no clean-up at all
        first.wait()
    killed_at = time.time()
    second = _scheduler(project)
    try:
        crashed = _until(
            "the in-flight fire marked crashed",
            lambda: (
                (f := client.metadata.schedules.fires.get(running.id)).status == FireStatus.CRASHED
                and f
            ),
        )
        _until(
            "its run marked crashed",
            lambda: (
                client.sweep() >= 0
                and client.run_record(running.run_id).status == RunStatus.CRASHED
            ),
        )
        (project / "release").write_text("go")
        later = _until(
            "a later fire that succeeded",
            lambda: [
                f
                for f in _fires(client, "nightly")
                if f.status == FireStatus.SUCCEEDED and f.due_at > killed_at
            ],
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    assert crashed.attempt == 1  # never started a second time
    assert "stopped while the fire ran" in (crashed.error or "")
    fires = _fires(client, "nightly")
    assert len({f.due_at for f in fires}) == len(fires)  # one fire per due time
    runs = client.search_runs("pipeline = 'slow'", limit=1000)
    per_fire: dict[str, int] = {}
    for r in runs:
        per_fire[r.tags["schedule.fire"]] = per_fire.get(r.tags["schedule.fire"], 0) + 1
    assert per_fire[str(running.id)] == 1
    assert per_fire[str(later[0].id)] == 1
    assert all(n == 1 for n in per_fire.values())


def test_a_timeout_stops_the_run_and_fails_the_fire_after_its_retries(project: Path) -> None:
    (project / "pipelines.py").write_text(PIPELINES)
    client = Client().open()
    record = lib.make_record(
        "stuck", pipeline="slow", cron="0 0 1 1 *", timeout="1s", retries=1, backoff="1s"
    )
    lib.add(client, record)
    fire = lib.run_now(client, "stuck", by="test")
    scheduler = Scheduler(client, tick_s=0.1, lease_s=5).start()
    try:
        done = _until(
            "the fire failed",
            lambda: (
                (f := client.metadata.schedules.fires.get(fire.id)).status == FireStatus.FAILED
                and f
            ),
            timeout=120,
        )
    finally:
        scheduler.stop()
    assert done.attempt == 2
    assert "timed out" in (done.error or "")
    runs = [
        r
        for r in client.search_runs("pipeline = 'slow'", limit=100)
        if r.tags.get("schedule") == "stuck"
    ]
    assert sorted(r.tags["schedule.attempt"] for r in runs) == ["1", "2"]
    assert {r.status for r in runs} == {RunStatus.FAILED}
    assert all("Timed out" in (r.error or "") for r in runs)
    assert fire.requested_by == "test" and fire.kind == "manual"
