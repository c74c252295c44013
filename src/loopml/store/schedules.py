"""Schedules and their fires (see migration 0008 for the tables).

A fire is one ``(schedule, due_at)`` pair; the table's unique constraint on it is what makes
each due time run exactly once, however many schedulers share the store.

Deciding fires (:meth:`Schedules.claim`): a scheduler reads the schedules, works out in
Python which due times in ``(decided_until, now]`` run and which are skipped (the catch-up
policy, in ``loopml.scheduler.planning``), then in ONE transaction moves each schedule's
``decided_until`` forward *only if* it still holds the value and generation it read
(``WHERE name = ? AND generation = ? AND decided_until = ?``) and inserts the fire rows.
A scheduler that loses that race changes nothing; an edit or a removal in between bumps
the generation or deletes the row, so a stale plan never fires. If two plans still met,
the unique constraint refuses the second (a ConflictError, which the claim treats as
"another scheduler won").

Running fires (owner, lease, retries, crashes) are in :mod:`loopml.store.fires`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import ConflictError, InvalidParameterError, NotFoundError
from loopml.store.engine import Database, Tx
from loopml.store.fires import FIRE_COLUMNS, FireRecord, Fires, fire_record
from loopml.store.status import FireStatus

__all__ = ["FIRE_COLUMNS", "FireRecord", "FirePlan", "ScheduleRecord", "Schedules", "fire_record"]

CATCHUP_POLICIES = ("skip", "once", "all")
#: What a fire does when it is due while an earlier fire of its schedule still runs.
OVERLAP_POLICIES = ("wait", "skip", "allow")
SOURCES = ("cli", "config")


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A schedule as stored."""

    name: str
    pipeline: str
    cron: str
    timezone: str = "UTC"
    params: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None
    retries: int = 0
    backoff_s: float = 60.0
    catchup: str = "once"
    overlap: str = "wait"
    paused: bool = False
    source: str = "cli"
    decided_until: float = 0.0
    generation: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0
    updated_by: str = ""

    def definition(self) -> tuple[Any, ...]:
        """What the user declares (not the bookkeeping): equal definitions need no write."""
        return (
            self.pipeline,
            self.cron,
            self.timezone,
            self.params,
            self.timeout_s,
            self.retries,
            self.backoff_s,
            self.catchup,
            self.overlap,
            self.paused,
            self.source,
        )


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What one claim decides for one schedule: the fire rows, and the new ``decided_until``.

    ``rows`` are ``(due_at, kind, status, error)`` with status ``pending`` (to run) or
    ``skipped`` (recorded, never run).
    """

    name: str
    generation: int
    decided_from: float
    decided_until: float
    rows: tuple[tuple[float, str, FireStatus, str | None], ...]


SCHEDULE_COLUMNS = (
    "name, pipeline, cron, timezone, params, timeout_s, retries, backoff_s, catchup, overlap, "
    "paused, source, decided_until, generation, created_at, updated_at, updated_by"
)


def schedule_record(row: tuple[Any, ...]) -> ScheduleRecord:
    values = list(row)
    values[4] = json.loads(values[4])
    values[10] = bool(values[10])
    return ScheduleRecord(*values)


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"No schedule named {name!r}; `loopml schedules` lists them, "
        f"`loopml schedule add {name} --pipeline P --cron '…'` creates it."
    )


class Schedules:
    """The schedules and fires of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.fires = Fires(db)

    # -- reading ----------------------------------------------------------------------------

    def list(self) -> list[ScheduleRecord]:
        rows = self.db.read(
            lambda tx: tx.all(f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name")
        )
        return [schedule_record(r) for r in rows]

    def find(self, name: str) -> ScheduleRecord | None:
        row = self.db.read(
            lambda tx: tx.one(f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = ?", (name,))
        )
        return None if row is None else schedule_record(row)

    def get(self, name: str) -> ScheduleRecord:
        found = self.find(name)
        if found is None:
            raise _not_found(name)
        return found

    # -- writing ----------------------------------------------------------------------------

    def put(self, record: ScheduleRecord, *, now: float) -> tuple[ScheduleRecord, bool]:
        """Create the schedule, or replace its definition (the generation grows).

        A new schedule decides nothing before ``now``: it fires from its next due time on.
        A changed cron expression or time zone also starts from ``now``, so an edit never
        catches up the due times of the old expression. Returns ``(stored, changed)``.
        """
        if (
            record.catchup not in CATCHUP_POLICIES
            or record.overlap not in OVERLAP_POLICIES
            or record.source not in SOURCES
        ):
            raise InvalidParameterError(
                f"Schedule {record.name!r}: catch-up {record.catchup!r} / overlap "
                f"{record.overlap!r} / source {record.source!r}; expected one of "
                f"{CATCHUP_POLICIES} / {OVERLAP_POLICIES} / {SOURCES}."
            )

        def write(tx: Tx) -> tuple[ScheduleRecord, bool]:
            _lock(tx, record.name)
            row = tx.one(f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = ?", (record.name,))
            params = json.dumps(record.params, sort_keys=True)
            if row is None:
                tx.execute(
                    f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                    (
                        record.name,
                        record.pipeline,
                        record.cron,
                        record.timezone,
                        params,
                        record.timeout_s,
                        record.retries,
                        record.backoff_s,
                        record.catchup,
                        record.overlap,
                        record.paused,
                        record.source,
                        now,
                        now,
                        now,
                        record.updated_by,
                    ),
                )
                return _read(tx, record.name), True
            old = schedule_record(row)
            if old.definition() == record.definition():
                return old, False
            decided = old.decided_until
            if (old.cron, old.timezone) != (record.cron, record.timezone) or (
                old.paused and not record.paused
            ):
                decided = max(decided, now)
            tx.execute(
                "UPDATE schedules SET pipeline = ?, cron = ?, timezone = ?, params = ?, "
                "timeout_s = ?, retries = ?, backoff_s = ?, catchup = ?, overlap = ?, paused = ?, "
                "source = ?, "
                "decided_until = ?, generation = generation + 1, updated_at = ?, updated_by = ? "
                "WHERE name = ?",
                (
                    record.pipeline,
                    record.cron,
                    record.timezone,
                    params,
                    record.timeout_s,
                    record.retries,
                    record.backoff_s,
                    record.catchup,
                    record.overlap,
                    record.paused,
                    record.source,
                    decided,
                    now,
                    record.updated_by,
                    record.name,
                ),
            )
            return _read(tx, record.name), True

        return self.db.write(write)

    def set_paused(self, name: str, paused: bool, *, by: str, now: float) -> ScheduleRecord:
        """Pause or resume. Due times while paused are not run and not caught up: a resumed
        schedule fires from its next due time after ``now``."""

        def write(tx: Tx) -> ScheduleRecord:
            _lock(tx, name)
            old = _read(tx, name)
            if old.paused == paused:
                return old
            decided = old.decided_until if paused else max(old.decided_until, now)
            tx.execute(
                "UPDATE schedules SET paused = ?, decided_until = ?, generation = generation + 1, "
                "updated_at = ?, updated_by = ? WHERE name = ?",
                (paused, decided, now, by, name),
            )
            return _read(tx, name)

        return self.db.write(write)

    def remove(self, name: str, *, now: float) -> ScheduleRecord:
        """Delete the schedule; its fires not started yet are recorded ``skipped``.

        Once this commits no fire of it starts: starting a fire needs it ``pending``
        (see :meth:`Fires.take`), and the same transaction ends every pending one.
        """

        def write(tx: Tx) -> ScheduleRecord:
            old = _read(tx, name)
            tx.execute("DELETE FROM schedules WHERE name = ?", (name,))
            tx.execute(
                "UPDATE schedule_fires SET status = ?, ended_at = ?, owner = NULL, "
                "error = 'the schedule was removed before this fire started' "
                "WHERE schedule = ? AND status = ?",
                (FireStatus.SKIPPED, now, name, FireStatus.PENDING),
            )
            return old

        return self.db.write(write)

    # -- deciding fires -------------------------------------------------------------------

    def claim(self, plans: Sequence[FirePlan], *, now: float) -> Sequence[FirePlan]:
        """Apply ``plans`` in one transaction; returns the plans this call won.

        A plan whose schedule moved on (decided by another scheduler, edited, paused,
        removed) is dropped without a write. A unique-constraint conflict means another
        scheduler inserted the same fire first: then nothing of this call is written and
        ``[]`` comes back (the next tick reads afresh).
        """
        if not plans:
            return []
        ordered = sorted(plans, key=lambda p: p.name)  # one lock order: no deadlocks

        def write(tx: Tx) -> list[FirePlan]:
            won: list[FirePlan] = []
            for plan in ordered:
                changed = tx.execute(
                    "UPDATE schedules SET decided_until = ? "
                    "WHERE name = ? AND generation = ? AND decided_until = ? AND paused = ?",
                    (plan.decided_until, plan.name, plan.generation, plan.decided_from, False),
                )
                if changed != 1:
                    continue
                tx.executemany(
                    "INSERT INTO schedule_fires (schedule, due_at, kind, status, attempt, "
                    "not_before, claimed_at, ended_at, error) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)",
                    [
                        (
                            plan.name,
                            due,
                            kind,
                            status,
                            due,
                            now,
                            None if status == FireStatus.PENDING else now,
                            error,
                        )
                        for due, kind, status, error in plan.rows
                    ],
                )
                won.append(plan)
            return won

        try:
            return self.db.write(write)
        except ConflictError:
            return []

    def add_manual(self, name: str, *, now: float, by: str) -> FireRecord:
        """A fire of ``name`` due ``now``, outside its cron (``run-now``); paused or not."""

        def write(tx: Tx) -> FireRecord:
            _read(tx, name)
            tx.execute(
                "INSERT INTO schedule_fires (schedule, due_at, kind, status, attempt, not_before, "
                "claimed_at, requested_by) VALUES (?, ?, 'manual', ?, 0, ?, ?, ?)",
                (name, now, FireStatus.PENDING, now, now, by),
            )
            row = tx.one(
                f"SELECT {FIRE_COLUMNS} FROM schedule_fires WHERE schedule = ? AND due_at = ?",
                (name, now),
            )
            assert row is not None
            return fire_record(row)

        try:
            return self.db.write(write)
        except ConflictError:
            raise ConflictError(
                f"Schedule {name!r} already has a fire due at this instant; retry run-now."
            ) from None


def _lock(tx: Tx, name: str) -> None:
    """Hold the schedule's row until commit before reading it to write it back: on
    PostgreSQL another scheduler's claim could otherwise commit between the read and the
    write, and the write would move ``decided_until`` back (SQLite's write transactions
    are exclusive already)."""
    tx.execute("UPDATE schedules SET generation = generation WHERE name = ?", (name,))


def _read(tx: Tx, name: str) -> ScheduleRecord:
    row = tx.one(f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = ?", (name,))
    if row is None:
        raise _not_found(name)
    return schedule_record(row)
