"""A fire due while its schedule's previous fire still runs: the overlap policies, on the
real claim path (``Fires.take``) of SQLite and PostgreSQL.

``wait`` (the default) starts it once the previous one has ended, exactly once; ``skip``
records it skipped with the reason; ``allow`` runs both. Two schedulers taking at the same
moment never start two fires of a ``wait`` schedule.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from loopml.scheduler import schedules as lib
from loopml.scheduler.loop import Scheduler, StartRequest
from loopml.store.status import FireStatus
from loopml.tracking.client import Client

T0 = 1_717_200_000.0  # 2024-06-01 00:00 UTC


@dataclass
class Job:
    code: int | None = None
    run_id: str | None = None
    error: str | None = None

    def poll(self) -> int | None:
        return self.code

    def kill(self) -> None:
        self.code = 1


@dataclass
class Jobs:
    """A starter whose jobs run until the test ends them."""

    started: list[tuple[StartRequest, Job]] = field(default_factory=list)

    def __call__(self, request: StartRequest) -> Job:
        job = Job()
        self.started.append((request, job))
        return job

    def names(self) -> list[str]:
        return [r.schedule.name for r, _ in self.started]

    def end_all(self) -> None:
        for _, job in self.started:
            if job.code is None:
                job.code = 0


class Clock:
    now = T0

    def __call__(self) -> float:
        return self.now


def _fires(client: Client, name: str) -> list[Any]:
    views = client.metadata.schedules.fires.history(name, limit=100)
    return sorted((v.fire for v in views), key=lambda f: f.due_at)


def test_wait_skip_and_allow_when_the_previous_fire_still_runs(client: Client) -> None:
    for policy in ("wait", "skip", "allow"):
        record = lib.make_record(policy, pipeline="p", cron="* * * * *", overlap=policy)
        lib.add(client, record, check=False, now=T0)
    assert client.metadata.schedules.get("wait").overlap == "wait"
    assert lib.make_record("d", pipeline="p", cron="* * * * *").overlap == "wait"  # default
    clock, jobs = Clock(), Jobs()
    sched = Scheduler(client, clock=clock, starter=jobs, sync_config=False)
    clock.now += 60
    sched.tick()  # 00:01 of each starts, and keeps running
    assert sorted(jobs.names()) == ["allow", "skip", "wait"]
    clock.now += 60
    sched.tick()  # 00:02 is due while 00:01 runs
    assert sorted(jobs.names()) == ["allow", "allow", "skip", "wait"]
    assert [f.status for f in _fires(client, "wait")] == [FireStatus.RUNNING, FireStatus.PENDING]
    first, second = _fires(client, "skip")
    assert second.status == FireStatus.SKIPPED and second.started_at is None
    assert f"fire {first.id} (due 2024-06-01T00:01:00Z) was still running" in second.error
    assert "overlap 'skip'" in second.error
    # run-now is an explicit ask: under "skip" it waits rather than being skipped.
    manual = lib.run_now(client, "skip", by="me", now=clock.now - 1)
    sched.tick()
    assert client.metadata.schedules.fires.get(manual.id).status == FireStatus.PENDING

    jobs.end_all()
    sched.tick()  # the 00:01 fires end ...
    sched.tick()  # ... and what waited starts, once
    assert sorted(jobs.names()) == ["allow", "allow", "skip", "skip", "wait", "wait"]
    jobs.end_all()
    for _ in range(3):
        sched.tick()
    assert [f.status for f in _fires(client, "wait")] == [FireStatus.SUCCEEDED] * 2
    assert [f.attempt for f in _fires(client, "wait")] == [1, 1]
    assert client.metadata.schedules.fires.get(manual.id).status == FireStatus.SUCCEEDED
    assert jobs.names().count("wait") == 2  # exactly once each


def _take(fires: Any, owner: str, now: float, barrier: threading.Barrier, out: list[Any]) -> None:
    barrier.wait(30)
    out.extend(fires.take(owner, now=now, lease_s=30))


def test_two_schedulers_taking_at_once_start_one_fire_of_a_wait_schedule(
    client: Client, store_url: str
) -> None:
    """The race the schedule row lock closes: both see two pending fires, none running.
    Each taker has its own client (its own connections), as two scheduler processes do."""
    record = lib.make_record("w", pipeline="p", cron="0 0 1 1 *")
    lib.add(client, record, check=False, now=T0)
    fires = client.metadata.schedules.fires
    takers = [Client(store_uri=store_url).open().metadata.schedules.fires for _ in range(2)]
    for round_ in range(8):
        base = T0 + 10 * round_
        for k in range(2):
            lib.run_now(client, "w", by="me", now=base + k)
        barrier = threading.Barrier(2)
        taken: list[Any] = []

        threads = [
            threading.Thread(target=_take, args=(takers[i], f"s{i}", base + 5, barrier, taken))
            for i in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(taken) == 1, f"round {round_}: {taken}"
        running = [f for f in _fires(client, "w") if f.status == FireStatus.RUNNING]
        assert [f.id for f in running] == [taken[0].id]
        fires.finish(taken[0].id, taken[0].owner, FireStatus.SUCCEEDED, now=base, error=None)
        (later,) = fires.take("s0", now=base + 5, lease_s=30)  # the second one, after
        fires.finish(later.id, "s0", FireStatus.SUCCEEDED, now=base, error=None)
