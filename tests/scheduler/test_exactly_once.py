"""Exactly-once firing with several real scheduler processes on one store (R27, issue 17).

Each scheduler is a separate process (``sched_proc.py``) on an accelerated clock shared by
all of them, so hours of fire times pass in seconds. Jobs end at once; each start appends
a line to a log, an independent record of what was started. Passing means, for every
``(schedule, due_at)``: exactly one fire row (the unique constraint, and a counting query),
at most one start, and no due time missed up to where the schedule was decided.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopml.scheduler import schedules as lib
from loopml.scheduler.cron import parse
from loopml.store.status import FireStatus
from loopml.tracking.client import Client

HERE = Path(__file__).parent
BASE = 1_717_200_000.0  # 2024-06-01 00:00 UTC
SPEED = 1200.0  # 20 simulated minutes per second
CRONS = [
    "* * * * *",
    "* * * * *",
    "*/5 * * * *",
    "*/5 * * * *",
    "*/7 * * * *",
    "0 * * * *",
    "15,45 * * * *",
    "30 */2 * * *",
]


def _spawn(url: str, t0: float, log: Path, *, wait: bool = True) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(lib.__file__).parents[2]), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "sched_proc.py"),
            url,
            repr(BASE),
            repr(t0),
            repr(SPEED),
            str(log),
        ],
        env=env,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    if wait:
        assert proc.stdout.readline().strip() == b"ready"
    return proc


def _spawn_all(url: str, t0: float, log: Path, n: int) -> list[subprocess.Popen[bytes]]:
    procs = [_spawn(url, t0, log, wait=False) for _ in range(n)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
    return procs


def _setup(url: str) -> tuple[Client, list[str]]:
    client = Client(store_uri=url).open()
    names = []
    for i, expr in enumerate(CRONS):
        name = f"s{i}"
        record = lib.make_record(name, pipeline="p", cron=expr, catchup="all", by="test")
        lib.add(client, record, check=False, now=BASE)
        names.append(name)
    return client, names


def _check(client: Client, log: Path, names: list[str], removed: dict[str, set[int]]) -> int:
    db = client.metadata.db
    dupes = db.read(
        lambda tx: tx.all(
            "SELECT schedule, due_at, COUNT(*) FROM schedule_fires "
            "GROUP BY schedule, due_at HAVING COUNT(*) > 1"
        )
    )
    assert dupes == []
    starts = collections.Counter(
        (parts[0], float(parts[1]))
        for parts in (line.split() for line in log.read_text().splitlines())
    )
    assert [k for k, n in starts.items() if n > 1] == []  # no fire started twice
    fires = db.read(lambda tx: tx.all("SELECT id, schedule, due_at, status FROM schedule_fires"))
    by_key = {(s, d): (i, st) for i, s, d, st in fires}
    assert set(starts) <= set(by_key)
    for name in names:
        if name in removed:
            started_late = {
                by_key[k][0] for k in starts if k[0] == name and by_key[k][0] not in removed[name]
            }
            assert started_late == set(), f"{name} fired after its removal committed"
            continue
        record = client.metadata.schedules.get(name)
        expected = parse(record.cron).between(BASE, record.decided_until)
        got = sorted(d for s, d in by_key if s == name)
        assert got == expected, f"{name}: missed or extra fire times"
        for due in expected:
            fire_id, status = by_key[(name, due)]
            # Started exactly once, or crashed with its killed scheduler (never re-started).
            assert status in (
                FireStatus.SUCCEEDED,
                FireStatus.CRASHED,
                FireStatus.PENDING,
                FireStatus.RUNNING,
            )
    return len(fires)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(30)
        if p.stdout is not None:
            p.stdout.close()


@pytest.mark.parametrize("n", [2])
def test_two_scheduler_processes_fire_each_due_time_exactly_once(
    store_url: str, tmp_path: Path, n: int
) -> None:
    client, names = _setup(store_url)
    log = tmp_path / "starts.log"
    t0 = time.time()
    procs = _spawn_all(store_url, t0, log, n)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs)
            time.sleep(0.2)
    finally:
        _stop(procs)
    fires = _check(client, log, names, {})
    assert fires > 150  # 5 s at 20 simulated min/s: ~1.7 simulated hours of fire times
    pids = {line.split()[3] for line in log.read_text().splitlines()}
    assert len(pids) == n  # both schedulers did work


def test_four_schedulers_killed_restarted_edited_and_removed_mid_loop(
    store_url: str, tmp_path: Path
) -> None:
    """R27: SIGKILL and restart schedulers at random; edit one schedule, remove another."""
    client, names = _setup(store_url)
    log = tmp_path / "starts.log"
    t0 = time.time()
    procs = _spawn_all(store_url, t0, log, 4)
    rng = random.Random(27)
    removed: dict[str, set[int]] = {}
    kills = 0
    try:
        step = 0
        while kills < 12:
            time.sleep(0.6)
            step += 1
            victim = rng.randrange(len(procs))
            procs[victim].kill()
            procs[victim].wait()
            assert procs[victim].stdout is not None
            procs[victim].stdout.close()
            kills += 1
            procs[victim] = _spawn(store_url, t0, log, wait=False)
            if step == 4:
                edited = lib.make_record(
                    "s0",
                    pipeline="p",
                    cron="* * * * *",
                    catchup="all",
                    params={"v": "2"},
                    by="test",
                )
                lib.add(client, edited, replace=True, check=False)
            if step == 8:
                lib.remove(client, "s1", by="test")
                rows = client.metadata.db.read(
                    lambda tx: tx.all(
                        "SELECT id FROM schedule_fires WHERE schedule = 's1' AND status <> ?",
                        (FireStatus.SKIPPED,),
                    )
                )
                removed["s1"] = {r[0] for r in rows}
    finally:
        _stop(procs)
    _check(client, log, names, removed)
