"""``loopml server`` fires schedules end to end, and SIGTERM stops its scheduler cleanly.

A real ``loopml server --port 0`` process in a project with pipelines: a 6-field cron
schedule fires on its own and its run succeeds, tagged with the schedule; a run-now sent
through the REST API starts a slow run; SIGTERM of the server then stops that run and
records its fire ``failed`` ("the scheduler stopped"), so no fire is left ``running``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from _apiwrite_helpers import CliServer, token, wait_for

from loopml.scheduler import schedules as lib
from loopml.store.status import FireStatus, RunStatus
from loopml.tracking.client import Client

PIPELINES = """
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
    deadline = time.monotonic() + 120  # never hang a test for ever
    while not Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return 1


@pipeline
def slow(tag: str = "x"):
    return hold(tag=tag)
"""


def _fires(client: Client, name: str, status: FireStatus) -> list[Any]:
    views = client.metadata.schedules.fires.history(name, limit=200)
    return [v.fire for v in views if v.fire.status == status]


def test_loopml_server_fires_schedules_and_stops_its_scheduler_on_sigterm(
    project: Path,
) -> None:
    (project / "pipelines.py").write_text(PIPELINES)
    client = Client().open()
    every = lib.make_record("every-3s", pipeline="score", cron="*/3 * * * * *", params={"region": "north"})  # fmt: skip
    lib.add(client, every)
    lib.add(client, lib.make_record("held", pipeline="slow", cron="0 0 1 1 *"))
    ops = token(client, "ops", "writer")
    server = CliServer("--port", "0", cwd=project).started()
    try:
        done = wait_for(lambda: _fires(client, "every-3s", FireStatus.SUCCEEDED), timeout=90)
        run = client.run_record(done[0].run_id)
        assert run.status == RunStatus.SUCCEEDED and run.pipeline == "score"
        assert run.tags["schedule"] == "every-3s" and run.tags["schedule.kind"] == "cron"
        assert run.params["region"] == "north"
        shown = httpx.get(f"{server.url}/api/schedules/every-3s", timeout=30).json()
        assert shown["last_status"] == "succeeded" and shown["last_run_id"]

        lib.pause(client, "every-3s", by="test")  # only the slow run in flight at SIGTERM
        asked = httpx.post(f"{server.url}/api/schedules/held/run-now", headers=ops, timeout=30)
        assert asked.status_code == 202, asked.text
        fire_id = asked.json()["id"]
        fires = client.metadata.schedules.fires
        wait_for(lambda: fires.get(fire_id).run_id, timeout=90)
    finally:
        code = server.stop()
    assert code == 0, "".join(server.output)
    stopped = fires.get(fire_id)
    assert stopped.status == FireStatus.FAILED, stopped
    assert "the scheduler stopped" in (stopped.error or "")
    assert client.run_record(stopped.run_id).status != RunStatus.RUNNING
    running = client.metadata.db.read(
        lambda tx: tx.scalar(
            "SELECT COUNT(*) FROM schedule_fires WHERE status = ?", (FireStatus.RUNNING,)
        )
    )
    assert running == 0
