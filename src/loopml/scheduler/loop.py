"""The scheduler loop: claim due fires, start each in its own process, watch, finish, retry.

``Scheduler(client).start()`` runs it in a background thread (what ``loopml server`` does);
``loopml scheduler`` runs it in the foreground. Any number of schedulers may share one
store: fires are decided and taken through conditional updates in the database (see
``loopml.store.schedules`` and ``loopml.store.fires``), so each due time runs exactly once.

Each tick:

1. syncs the ``[schedules.*]`` tables of ``loopml.toml`` into the store (when the file
   changed);
2. renews the leases of the fires this scheduler runs, and kills a child whose fire is no
   longer its own (swept by another scheduler after a long stall);
3. marks ``crashed`` the fires of schedulers that died, and dead runs crashed;
4. decides the due fires (``loopml.scheduler.planning``: catch-up policies) and claims them;
5. starts pending fires (``starter``; by default a child process per run, see
   ``loopml.scheduler.launch``), up to ``max_running`` at once;
6. watches its children: success, failure (retried with back-off while retries last),
   timeout (the child stops its run; the scheduler kills it after a grace period);
7. starts the ``periodic`` work that is due (``loopml server`` and ``loopml scheduler`` pass
   the monitors' evaluation), each in its own thread and never twice at once, so a slow
   monitor never delays a fire.

Times: due times, ``started_at`` and ``ended_at`` come from ``clock`` (injectable, so
tests run days of fires in seconds); leases come from the database's clock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from loopml._process import owner_alive, owner_token
from loopml.errors import LoopmlError
from loopml.scheduler.cron import iso_utc
from loopml.scheduler.planning import GRACE_S, plan
from loopml.store.schedules import FireRecord, ScheduleRecord
from loopml.store.status import FireStatus

log = logging.getLogger("loopml.scheduler")

#: Exit status of a child that could not start its run (unknown pipeline, bad parameters).
EXIT_CANNOT_START = 2


class Job(Protocol):
    """A started fire: what :class:`Scheduler` watches (``Launched`` is one)."""

    run_id: str | None
    error: str | None

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...


@dataclass(frozen=True)
class StartRequest:
    """What a starter gets: the schedule, the fire, and the tags for its run."""

    schedule: ScheduleRecord
    fire: FireRecord
    tags: dict[str, str]
    params: list[str]


Starter = Callable[[StartRequest], Job]


def run_tags(schedule: ScheduleRecord, fire: FireRecord) -> dict[str, str]:
    """The tags of a scheduled run: which schedule, fire, due time and attempt."""
    return {
        "schedule": schedule.name,
        "schedule.fire": str(fire.id),
        "schedule.due": iso_utc(fire.due_at) or "",
        "schedule.kind": fire.kind,
        "schedule.attempt": str(fire.attempt),
    }


def param_args(params: dict[str, Any]) -> list[str]:
    """``{"region": "north"}`` as the ``KEY=VALUE`` strings a pipeline's signature types."""
    import json

    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in params.items()]


def process_starter(client: Any) -> Starter:
    """Start each fire as ``python -m loopml.scheduler.job`` (dies with the scheduler)."""
    from loopml.config import STORE_DIR
    from loopml.scheduler.launch import JobSpec, launch

    settings = client.settings
    logs = Path(settings.root) / STORE_DIR / "scheduler"

    def start(request: StartRequest) -> Job:
        fire = request.fire
        return launch(
            settings,
            JobSpec(
                pipeline=request.schedule.pipeline,
                params=request.params,
                tags=request.tags,
                timeout_s=request.schedule.timeout_s,
                die_with_parent=True,
            ),
            log_path=logs / f"{request.schedule.name}-{fire.id}-{fire.attempt}.log",
        )

    return start


@dataclass
class _Active:
    fire: FireRecord
    schedule: ScheduleRecord
    job: Job
    started: float  # monotonic
    run_noted: bool = False


@dataclass(frozen=True)
class Periodic:
    """Work a scheduler does besides fires: ``work()`` every ``every_s`` seconds."""

    name: str
    every_s: float
    work: Callable[[], object]


@dataclass
class TickReport:
    """What one tick did (for tests, logs and the bench)."""

    claimed: int = 0
    skipped: int = 0
    started: list[int] = field(default_factory=list)
    finished: list[tuple[int, FireStatus]] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    crashed: list[int] = field(default_factory=list)


class Scheduler:
    """Fires the store's schedules; any number may share one store.

    Args:
        client: the store (and project settings) to schedule on.
        owner: this scheduler's name in fire rows (default: this process, machine-qualified,
            plus a random suffix).
        tick_s: seconds between ticks.
        clock: the time of due times (``time.time``; tests pass an accelerated clock).
        lease_s: how long a fire stays this scheduler's without a renewal (database clock).
        grace_s: due times younger than this are on time; older ones follow the catch-up
            policy.
        starter: starts a fire (default: a child process running the pipeline).
        max_running: fires this scheduler runs at once; the rest wait ``pending``.
        sync_config: sync ``[schedules.*]`` from ``loopml.toml`` into the store each tick.
        kill_grace_s: how long past its timeout a child may take before it is killed.
        periodic: other work to do every so often, each in its own thread (monitors).
    """

    def __init__(
        self,
        client: Any,
        *,
        owner: str | None = None,
        tick_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        lease_s: float = 30.0,
        grace_s: float = GRACE_S,
        starter: Starter | None = None,
        max_running: int = 8,
        sync_config: bool = True,
        kill_grace_s: float | None = None,
        periodic: Sequence[Periodic] = (),
    ) -> None:
        from loopml.scheduler.launch import TIMEOUT_GRACE_S

        self.client = client
        self.owner = owner or f"{owner_token()}/{os.urandom(3).hex()}"
        self.tick_s = tick_s
        self.clock = clock
        self.lease_s = lease_s
        self.grace_s = grace_s
        self.starter = starter
        self.max_running = max_running
        self.sync_config = sync_config
        self.kill_grace_s = TIMEOUT_GRACE_S if kill_grace_s is None else kill_grace_s
        self.active: dict[int, _Active] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._runs_swept = 0.0
        self.periodic = list(periodic)
        self._periodic_last: dict[str, float] = {}
        self._periodic_threads: dict[str, threading.Thread] = {}

    @property
    def store(self) -> Any:
        return self.client.metadata.schedules

    # -- one tick ---------------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Do one round of work (see the module doc); returns what it did."""
        report = TickReport()
        if self.sync_config:
            from loopml.scheduler.schedules import sync_config

            sync_config(self.client, now=self.clock())
        self._renew()
        self._sweep(report)
        self._claim(report)
        self._start(report)
        self._watch(report)
        self._periodic()
        return report

    def _periodic(self) -> None:
        now = time.monotonic()
        for job in self.periodic:
            running = self._periodic_threads.get(job.name)
            if running is not None and running.is_alive():
                continue
            last = self._periodic_last.get(job.name)
            if last is not None and now - last < job.every_s:
                continue
            self._periodic_last[job.name] = now
            thread = threading.Thread(
                target=self._run_periodic, args=(job,), name=f"loopml-{job.name}", daemon=True
            )
            self._periodic_threads[job.name] = thread
            thread.start()

    @staticmethod
    def _run_periodic(job: Periodic) -> None:
        from loopml._signals import leave_signals_to_main_thread

        leave_signals_to_main_thread()
        try:
            job.work()
        except Exception:  # one bad monitor must not stop the scheduler: log it, go on
            log.exception("scheduler: %s failed", job.name)

    def _renew(self) -> None:
        if not self.active:
            return
        mine = self.store.fires.renew(self.owner, lease_s=self.lease_s)
        for fire_id in [i for i in self.active if i not in mine]:
            active = self.active.pop(fire_id)
            log.warning("fire %s is no longer ours (lease lost): stopping its run", fire_id)
            active.job.kill()

    def _sweep(self, report: TickReport) -> None:
        crashed = self.store.fires.sweep(now=self.clock(), alive=owner_alive)
        report.crashed += [f.id for f in crashed]
        if crashed or time.monotonic() - self._runs_swept > 10:
            self._runs_swept = time.monotonic()
            self.client.sweep()  # their runs died with their scheduler: mark them crashed

    def _claim(self, report: TickReport) -> None:
        now = self.clock()
        plans = []
        for schedule in self.store.list():
            try:
                found = plan(schedule, now, grace_s=self.grace_s)
            except LoopmlError as exc:  # an expression that no longer parses: say so, go on
                log.error("schedule %s: %s", schedule.name, exc)
                continue
            if found is not None:
                plans.append(found)
        for won in self.store.claim(plans, now=now):
            for _, _, status, _ in won.rows:
                if status == FireStatus.SKIPPED:
                    report.skipped += 1
                else:
                    report.claimed += 1

    def _start(self, report: TickReport) -> None:
        room = self.max_running - len(self.active)
        if room <= 0:
            return
        now = self.clock()
        for fire in self.store.fires.take(self.owner, now=now, lease_s=self.lease_s, limit=room):
            schedule = self.store.find(fire.schedule)
            if schedule is None:  # removed between our take and now: it never starts
                self.store.fires.finish(
                    fire.id,
                    self.owner,
                    FireStatus.SKIPPED,
                    now=now,
                    error="the schedule was removed before this fire started",
                )
                continue
            request = StartRequest(
                schedule, fire, run_tags(schedule, fire), param_args(schedule.params)
            )
            try:
                job = (self.starter or process_starter(self.client))(request)
            except Exception as exc:  # noqa: BLE001 - any failure to start fails the fire
                self._failed(report, fire, schedule, f"could not start: {exc}", retry=True)
                continue
            self.active[fire.id] = _Active(fire, schedule, job, time.monotonic())
            report.started.append(fire.id)

    def _watch(self, report: TickReport) -> None:
        for fire_id, active in list(self.active.items()):
            job, schedule = active.job, active.schedule
            if job.run_id and not active.run_noted:
                active.run_noted = self.store.fires.set_run(fire_id, self.owner, job.run_id)
            code = job.poll()
            elapsed = time.monotonic() - active.started
            timeout = schedule.timeout_s
            if code is None:
                if timeout and elapsed > timeout + self.kill_grace_s:
                    job.kill()  # it did not stop its own run: the next poll sees it gone
                continue
            del self.active[fire_id]
            if job.run_id and not active.run_noted:
                self.store.fires.set_run(fire_id, self.owner, job.run_id)
            if code == 0:
                self.store.fires.finish(
                    fire_id, self.owner, FireStatus.SUCCEEDED, now=self.clock(), error=None
                )
                report.finished.append((fire_id, FireStatus.SUCCEEDED))
                continue
            error = self._error(active, code, elapsed)
            self._failed(report, active.fire, schedule, error, retry=code != EXIT_CANNOT_START)

    def _error(self, active: _Active, code: int, elapsed: float) -> str:
        timeout = active.schedule.timeout_s
        if timeout and elapsed >= timeout:
            return f"timed out after {timeout:g} s (the schedule's timeout); the run was stopped"
        if active.job.error:
            return active.job.error
        if active.job.run_id:
            try:
                run = self.client.metadata.runs.get(active.job.run_id)
                if run.error:
                    return str(run.error)
            except LoopmlError:
                pass
        return f"the run's process exited with status {code}"

    def _failed(
        self,
        report: TickReport,
        fire: FireRecord,
        schedule: ScheduleRecord,
        error: str,
        *,
        retry: bool,
    ) -> None:
        now = self.clock()
        if retry and fire.attempt <= schedule.retries:
            wait = schedule.backoff_s * 2 ** (fire.attempt - 1)
            note = f"attempt {fire.attempt} failed: {error}; retry in {wait:g} s"
            if self.store.fires.retry(fire.id, self.owner, not_before=now + wait, error=note):
                report.retried.append(fire.id)
            return
        if self.store.fires.finish(fire.id, self.owner, FireStatus.FAILED, now=now, error=error):
            report.finished.append((fire.id, FireStatus.FAILED))

    # -- running ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Tick every ``tick_s`` until ``stop`` is set; then stop the runs still in flight."""
        try:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    self.tick()
                except LoopmlError as exc:  # the store is unreachable for now: keep trying
                    log.error("scheduler tick failed: %s", exc)
                stop.wait(max(0.0, self.tick_s - (time.monotonic() - began)))
        finally:
            self._abandon()

    def start(self) -> Scheduler:
        """Run in a background (daemon) thread; :meth:`stop` ends it."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name="loopml-scheduler", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop the background thread; runs still in flight are stopped and their fires
        recorded ``failed`` ("the scheduler stopped")."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for thread in list(self._periodic_threads.values()):
            thread.join(timeout)

    def _abandon(self) -> None:
        now = self.clock()
        for fire_id, active in list(self.active.items()):
            active.job.kill()
            deadline = time.monotonic() + 5
            while active.job.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            try:
                self.store.fires.finish(
                    fire_id,
                    self.owner,
                    FireStatus.FAILED,
                    now=now,
                    error="the scheduler stopped while this fire ran; its run was stopped",
                )
            except LoopmlError as exc:
                log.error("could not record fire %s as stopped: %s", fire_id, exc)
        if self.active:
            self.active.clear()
            try:
                self.client.sweep()  # the stopped runs: crashed now, not after their lease
            except LoopmlError as exc:
                log.error("could not mark the stopped runs: %s", exc)
