"""Claiming fires through the store, on SQLite and PostgreSQL (R05 spec 3, R27, R28, R12).

In-process schedulers on a fake clock: catch-up policies after downtime, the skip cap,
pause/resume/remove, retries with back-off, a dead scheduler's fire marked crashed and
never started again, and every interleaving of two schedulers claiming the same fire.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from loopml.errors import ConflictError, NotFoundError
from loopml.scheduler import schedules as lib
from loopml.scheduler.loop import Scheduler, StartRequest
from loopml.scheduler.planning import SKIP_CAP, plan
from loopml.store.status import FireStatus
from loopml.tracking.client import Client

T0 = 1_717_200_000.0  # 2024-06-01 00:00 UTC
HOUR = 3600.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Job:
    code: int | None = 0
    run_id: str | None = None
    error: str | None = None
    killed: bool = False

    def poll(self) -> int | None:
        return self.code

    def kill(self) -> None:
        self.killed = True


@dataclass
class Starts:
    """A starter that records what it started; jobs end with ``code`` (None: never end)."""

    code: int | None = 0
    started: list[StartRequest] = field(default_factory=list)

    def __call__(self, request: StartRequest) -> Job:
        self.started.append(request)
        return Job(self.code)


def _add(client: Client, name: str, cron: str, **kw: Any) -> None:
    lib.add(client, lib.make_record(name, pipeline="p", cron=cron, **kw), check=False, now=T0)


def _sched(client: Client, clock: Clock, starts: Starts, **kw: Any) -> Scheduler:
    kw.setdefault("sync_config", False)
    return Scheduler(client, clock=clock, starter=starts, **kw)


def _fires(client: Client, name: str) -> list[Any]:
    return sorted(
        (v.fire for v in client.metadata.schedules.fires.history(name, limit=10_000)),
        key=lambda f: f.due_at,
    )


def _hours(fires: list[Any], status: FireStatus) -> list[int]:
    return [round((f.due_at - T0) / HOUR) for f in fires if f.status == status]


def test_downtime_follows_each_catch_up_policy_exactly(client: Client) -> None:
    """R28: hourly schedules, all schedulers down for 3 h 10 min, then one restarts."""
    for policy in ("skip", "once", "all"):
        _add(client, policy, "0 * * * *", catchup=policy)
    clock, starts = Clock(), Starts()
    sched = _sched(client, clock, starts)
    for _ in range(4):  # 2 h of normal ticks: the 01:00 and 02:00 fires run on time
        clock.now += 30 * 60
        sched.tick()
    clock.now += 3 * HOUR + 10 * 60  # down: 03:00, 04:00, 05:00 missed
    for _ in range(3):  # overlap "wait": one fire of a schedule at a time, one per tick
        sched.tick()
    for policy, ran, skipped in (
        ("skip", [1, 2], [3, 4, 5]),
        ("once", [1, 2, 5], [3, 4]),
        ("all", [1, 2, 3, 4, 5], []),
    ):
        fires = _fires(client, policy)
        assert _hours(fires, FireStatus.SUCCEEDED) == ran, policy
        assert _hours(fires, FireStatus.SKIPPED) == skipped, policy
        assert all("missed while no scheduler ran" in f.error for f in fires if f.error)
    assert len(starts.started) == 2 + 3 + 5  # no burst beyond the policy
    assert [f.kind for f in _fires(client, "once")] == [
        "cron",
        "cron",
        "catchup",
        "catchup",
        "catchup",
    ]


def test_a_week_down_records_at_most_the_skip_cap_for_an_every_second_schedule(
    client: Client,
) -> None:
    _add(client, "fast", "* * * * * *")
    clock, starts = Clock(), Starts()
    clock.now += 7 * 86400
    began = time.monotonic()
    _sched(client, clock, starts).tick()
    assert time.monotonic() - began < 5  # 604,800 missed seconds are not enumerated
    fires = _fires(client, "fast")
    skipped = [f for f in fires if f.status == FireStatus.SKIPPED]
    assert len(skipped) == SKIP_CAP
    assert "not recorded one by one" in skipped[0].error
    # To run: the latest missed one, and the on-time minute (GRACE_S).
    assert len([f for f in fires if f.status != FireStatus.SKIPPED]) == 1 + 60


def test_pause_resume_and_remove(client: Client) -> None:
    _add(client, "m", "* * * * *")
    clock, starts = Clock(), Starts()
    sched = _sched(client, clock, starts)
    lib.pause(client, "m", by="me", now=clock.now)
    clock.now += 10 * 60
    sched.tick()
    assert _fires(client, "m") == []
    assert lib.get(client, "m", now=clock.now).next_fire is None
    lib.resume(client, "m", by="me", now=clock.now)
    clock.now += 2 * 60
    sched.tick()
    sched.tick()  # overlap "wait": the second minute starts once the first has ended
    assert len(_fires(client, "m")) == 2  # the paused span is not caught up
    # A fire decided but not started when the schedule is removed never starts.
    idle = _sched(client, clock, Starts(), max_running=0)
    clock.now += 60
    idle.tick()
    pending = [f for f in _fires(client, "m") if f.status == FireStatus.PENDING]
    assert len(pending) == 1
    lib.remove(client, "m", by="me", now=clock.now)
    sched.tick()
    assert client.metadata.schedules.fires.get(pending[0].id).status == FireStatus.SKIPPED
    assert len(starts.started) == 2
    with pytest.raises(NotFoundError, match="No schedule named 'm'"):
        lib.run_now(client, "m", by="me")


def test_failures_retry_with_doubling_back_off_then_fail(client: Client) -> None:
    _add(client, "flaky", "0 0 1 1 *", retries=2, backoff="10s")
    clock, starts = Clock(), Starts(code=1)
    sched = _sched(client, clock, starts)
    fire = lib.run_now(client, "flaky", by="me", now=clock.now)
    sched.tick()
    got = client.metadata.schedules.fires.get(fire.id)
    assert (got.status, got.not_before) == (FireStatus.PENDING, clock.now + 10)
    clock.now += 9
    sched.tick()
    assert len(starts.started) == 1  # still backing off
    clock.now += 1
    sched.tick()
    got = client.metadata.schedules.fires.get(fire.id)
    assert (got.status, got.attempt, got.not_before) == (FireStatus.PENDING, 2, clock.now + 20)
    clock.now += 20
    sched.tick()
    got = client.metadata.schedules.fires.get(fire.id)
    assert (got.status, got.attempt) == (FireStatus.FAILED, 3)
    assert "exited with status 1" in got.error
    assert [r.tags["schedule.attempt"] for r in starts.started] == ["1", "2", "3"]


def test_a_dead_schedulers_fire_is_marked_crashed_and_never_started_again(
    client: Client,
) -> None:
    """R28/R12: the lease of a scheduler elsewhere expires; another marks its fire crashed."""
    _add(client, "h", "0 * * * *")
    clock = Clock(T0 + HOUR + 1)
    dead = _sched(client, clock, Starts(code=None), owner="otherhost:1:1/dead", lease_s=0.3)
    dead.tick()  # starts the 01:00 fire, then "dies": never ticks again
    (fire,) = _fires(client, "h")
    assert fire.status == FireStatus.RUNNING and fire.owner == "otherhost:1:1/dead"
    starts = Starts()
    alive = _sched(client, clock, starts)
    deadline = time.monotonic() + 30
    while client.metadata.schedules.fires.get(fire.id).status == FireStatus.RUNNING:
        assert time.monotonic() < deadline
        alive.tick()
        time.sleep(0.05)
    crashed = client.metadata.schedules.fires.get(fire.id)
    assert crashed.status == FireStatus.CRASHED and crashed.attempt == 1
    clock.now += HOUR
    alive.tick()
    assert [r.fire.id for r in starts.started] != [fire.id]
    assert len(starts.started) == 1 and starts.started[0].fire.due_at == T0 + 2 * HOUR


def _interleavings(sessions: dict[str, list[str]]) -> list[list[tuple[str, str]]]:
    """Every order of the sessions' steps that keeps each session's own order."""
    slots = [name for name, steps in sessions.items() for _ in steps]
    orders = []
    for perm in sorted(set(itertools.permutations(slots))):
        position = {name: 0 for name in sessions}
        order = []
        for name in perm:
            order.append((name, sessions[name][position[name]]))
            position[name] += 1
        orders.append(order)
    return orders


def test_two_schedulers_claiming_the_same_fire_in_every_interleaving(client: Client) -> None:
    """R05 spec 3: A and B each read the schedule, then claim; C removes it. One winner."""
    store = client.metadata.schedules
    orders = _interleavings({"A": ["read", "claim"], "B": ["read", "claim"], "C": ["remove"]})
    assert len(orders) == 30
    for i, order in enumerate(orders):
        name = f"r{i}"
        _add(client, name, "0 * * * *")
        plans: dict[str, Any] = {}
        won: dict[str, int] = {}
        removed = removed_before_claim = False
        for session, step in order:
            if step == "remove":
                lib.remove(client, name, by="C", now=T0)
                removed, removed_before_claim = True, not won
            elif step == "read" and removed:
                with pytest.raises(NotFoundError):
                    store.get(name)
            elif step == "read":
                plans[session] = plan(store.get(name), T0 + HOUR + 1)
            elif plans.get(session) is None:  # it read after the removal, or after the win
                won[session] = 0
            else:
                won[session] = len(store.claim([plans[session]], now=T0 + HOUR + 1))
        fires = client.metadata.db.read(
            lambda tx: tx.all("SELECT status FROM schedule_fires WHERE schedule = ?", (name,))  # noqa: B023
        )
        winners = sum(won.values())
        if removed_before_claim:
            assert winners == 0 and fires == [], order
        else:
            assert winners == 1, order  # exactly one winner; the loser wrote nothing
            assert [FireStatus(s) for (s,) in fires] == [FireStatus.SKIPPED], order


def test_the_unique_constraint_refuses_a_second_fire_for_one_due_time(client: Client) -> None:
    _add(client, "u", "0 * * * *")
    first = plan(client.metadata.schedules.get("u"), T0 + HOUR + 1)
    assert first is not None
    with pytest.raises(ConflictError):
        client.metadata.db.write(
            lambda tx: (
                tx.execute(
                    "INSERT INTO schedule_fires (schedule, due_at, kind, status, attempt, "
                    "not_before, claimed_at) VALUES ('u', ?, 'cron', ?, 0, 0, 0)",
                    (T0 + HOUR, FireStatus.PENDING),
                )
                + tx.execute(
                    "INSERT INTO schedule_fires (schedule, due_at, kind, status, attempt, "
                    "not_before, claimed_at) VALUES ('u', ?, 'cron', ?, 0, 0, 0)",
                    (T0 + HOUR, FireStatus.PENDING),
                )
            )
        )
    # Two takes of one pending fire: exactly one starts it.
    assert len(client.metadata.schedules.claim([first], now=T0 + HOUR + 1)) == 1
    fires = client.metadata.schedules.fires
    a = fires.take("a", now=T0 + HOUR + 1, lease_s=30)
    b = fires.take("b", now=T0 + HOUR + 1, lease_s=30)
    assert (len(a), len(b)) == (1, 0)
