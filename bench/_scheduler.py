"""The scheduler's figures for ``bench/server.py --only scheduler``.

- fire-to-start delay: a real ``loopml scheduler`` process fires a trivial pipeline on a
  6-field cron; each fire's due time against its run's ``started_at`` (child processes,
  as ``loopml server`` starts them);
- exactly once: two scheduler processes on one store and an accelerated clock (as
  ``tests/scheduler/sched_proc.py``) decide 1,000 fire times; expected / started /
  duplicated / missed, and the maximum lateness of a start after its due time.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _timing import PYTHON, Options, clean_env, fmt_ms, judged, median, report, temp_project

DELAY_BUDGET_S = 1.0
LOOPML = [PYTHON, "-c", "from loopml.cli.main import main; main()"]  # `loopml` of this Python
PIPELINE = """
from loopml import pipeline, step


@step
def one() -> int:
    return 1


@pipeline
def tiny():
    return one()
"""
# A scheduler on an accelerated clock whose jobs end at once; each start is logged as
# "schedule due_at simulated_now pid" (O_APPEND: lines of two processes never mix).
SCHEDULER = """
import os, signal, sys, threading, time
from loopml.scheduler.loop import Scheduler
from loopml.tracking.client import Client

url, base, t0, speed, log_path = sys.argv[1:6]
base, t0, speed = float(base), float(t0), float(speed)
fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def clock():
    return base + (time.time() - t0) * speed


class Done:
    run_id = None
    error = None

    def poll(self):
        return 0

    def kill(self):
        pass


def starter(request):
    fire = request.fire
    os.write(fd, f"{fire.schedule} {fire.due_at!r} {clock()!r} {os.getpid()}\\n".encode())
    return Done()


client = Client(store_uri=url).open()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
sched = Scheduler(client, clock=clock, tick_s=0.02, lease_s=2.0, starter=starter,
                  max_running=256, sync_config=False)
print("ready", flush=True)
sched.run(stop)
"""
BASE = 1_717_200_000.0  # 2024-06-01 00:00 UTC
SPEED = 1200.0  # 20 simulated minutes per wall-clock second
SCHEDULES = 4  # every minute each: 4 fire times per simulated minute


def bench_fire_delay(opts: Options) -> None:
    from loopml.scheduler import schedules as lib
    from loopml.tracking.client import Client

    fires_wanted = opts.pick(15, 3)
    tick = 0.2
    with temp_project("sched-delay") as root:
        (root / "pipelines.py").write_text(PIPELINE)
        client = Client(readonly=False).open()
        record = lib.make_record("tiny-2s", pipeline="tiny", cron="*/2 * * * * *", overlap="allow")
        lib.add(client, record)
        proc = subprocess.Popen(
            [*LOOPML, "scheduler", "--tick", str(tick)],
            cwd=root,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        history = client.metadata.schedules.fires.history
        deadline = time.monotonic() + 30 + 4 * fires_wanted
        try:
            while time.monotonic() < deadline:
                done = [v.fire for v in history("tiny-2s", limit=500) if v.fire.ended_at]
                if len(done) >= fires_wanted:
                    break
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        fires = sorted(
            (v.fire for v in history("tiny-2s", limit=500) if v.fire.run_id),
            key=lambda f: f.due_at,
        )[:fires_wanted]
        delays = [client.run_record(f.run_id).started_at - f.due_at for f in fires]
        failed = sum(str(f.status) != "succeeded" for f in fires)
        client.close()
    if not delays:
        report(opts, "scheduler fire-to-start delay", "no fire started (see the scheduler log)")
        return
    p50, worst = median(delays), max(delays)
    report(
        opts,
        "scheduler fire-to-start delay (due time to the run's started_at)",
        f"p50 {fmt_ms(p50)}, max {fmt_ms(worst)} over {len(delays)} fires, {failed} not "
        f"succeeded (`loopml scheduler --tick {tick:g}`, a 1-step pipeline in a child process "
        "each, cron */2 s, SQLite)",
        f"p50 < {DELAY_BUDGET_S:g} s",
        judged(opts, p50 < DELAY_BUDGET_S, size_dependent=False),
    )


def _spawn(url: str, t0: float, log: Path) -> subprocess.Popen[bytes]:
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.Popen(
        [PYTHON, "-c", SCHEDULER, url, repr(BASE), repr(t0), repr(SPEED), str(log)],
        env=env,
        stdout=subprocess.PIPE,
    )


def bench_exactly_once(opts: Options) -> None:
    from loopml.scheduler import schedules as lib
    from loopml.scheduler.cron import parse
    from loopml.tracking.client import Client

    target = opts.pick(1_000, 200)
    with temp_project("sched-once") as root:
        url = f"sqlite:///{root / '.loopml' / 'store.db'}"
        client = Client(store_uri=url, readonly=False).open()
        names = [f"s{i}" for i in range(SCHEDULES)]
        for name in names:
            record = lib.make_record(name, pipeline="p", cron="* * * * *", catchup="all")
            lib.add(client, record, check=False, now=BASE)
        log = root / "starts.log"
        # The simulated clock starts at BASE once both processes have had time to start, so
        # start-up is not counted as lateness (before t0 the clock is before BASE).
        t0 = time.time() + 3.0
        procs = [_spawn(url, t0, log) for _ in range(2)]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
        # Stop once the schedules have decided the target's fire times (plus one minute).
        end_at = BASE + (target // SCHEDULES + 1) * 60
        deadline = time.monotonic() + 60 + target / SCHEDULES * 60 / SPEED * 3
        try:
            while time.monotonic() < deadline:
                decided = min(client.metadata.schedules.get(n).decided_until for n in names)
                if decided >= end_at and len(log.read_text().splitlines()) >= target:
                    break
                time.sleep(0.05)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(30)
                if p.stdout is not None:
                    p.stdout.close()
        starts: collections.Counter[tuple[str, float]] = collections.Counter()
        lateness, pids = [], set()
        for line in log.read_text().splitlines():
            name, due, at, pid = line.split()
            starts[(name, float(due))] += 1
            lateness.append((float(at) - float(due)) / SPEED)
            pids.add(pid)
        expected = {
            (n, due)
            for n in names
            for due in parse("* * * * *").between(BASE, BASE + (target // SCHEDULES) * 60)
        }
        rows = client.metadata.db.read(
            lambda tx: tx.one(
                "SELECT COUNT(*), COUNT(DISTINCT schedule || ':' || due_at) FROM schedule_fires"
            )
        )
        client.close()
    started = sum(1 for k in expected if starts[k] > 0)
    duplicated = sum(n - 1 for n in starts.values() if n > 1)
    missed = len(expected) - started
    worst = max(lateness) if lateness else float("nan")
    report(
        opts,
        f"exactly once, 2 scheduler processes, {len(expected):,} fire times",
        f"expected {len(expected):,} / started {started:,} / duplicated {duplicated} / missed "
        f"{missed}; max lateness {fmt_ms(worst)} wall clock ({worst * SPEED:.0f} s simulated); "
        f"fire rows {rows[0]:,} ({rows[0] - rows[1]} duplicate keys); {len(pids)} schedulers "
        f"started fires ({SCHEDULES} schedules every minute, clock x{SPEED:g}, tick 20 ms, "
        "instant jobs, SQLite)",
        "0 duplicated, 0 missed",
        judged(opts, duplicated == 0 and missed == 0, size_dependent=False),
    )


def bench_scheduler(opts: Options) -> None:
    bench_fire_delay(opts)
    bench_exactly_once(opts)
