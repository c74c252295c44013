"""Schedules and their fires (see migration 0008 for the tables).

A fire is one ``(schedule, due_at)`` pair; the table's unique constraint on it is what makes
each due time run exactly once, however many schedulers share the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import NotFoundError
from loopml.store.engine import Database
from loopml.store.status import FireStatus


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
    paused: bool = False
    source: str = "cli"
    decided_until: float = 0.0
    generation: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0
    updated_by: str = ""


@dataclass(frozen=True, slots=True)
class FireRecord:
    """One fire of a schedule."""

    id: int
    schedule: str
    due_at: float
    kind: str
    status: FireStatus
    attempt: int
    run_id: str | None
    owner: str | None
    lease_until: float | None
    not_before: float
    claimed_at: float
    started_at: float | None
    ended_at: float | None
    error: str | None


SCHEDULE_COLUMNS = (
    "name, pipeline, cron, timezone, params, timeout_s, retries, backoff_s, catchup, paused, "
    "source, decided_until, generation, created_at, updated_at, updated_by"
)
FIRE_COLUMNS = (
    "id, schedule, due_at, kind, status, attempt, run_id, owner, lease_until, not_before, "
    "claimed_at, started_at, ended_at, error"
)


def schedule_record(row: tuple[Any, ...]) -> ScheduleRecord:
    values = list(row)
    values[4] = json.loads(values[4])
    values[9] = bool(values[9])
    return ScheduleRecord(*values)


def fire_record(row: tuple[Any, ...]) -> FireRecord:
    values = list(row)
    values[4] = FireStatus(values[4])
    return FireRecord(*values)


class Schedules:
    """The schedules and fires of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self) -> list[ScheduleRecord]:
        rows = self.db.read(
            lambda tx: tx.all(f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name")
        )
        return [schedule_record(r) for r in rows]

    def get(self, name: str) -> ScheduleRecord:
        row = self.db.read(
            lambda tx: tx.one(f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = ?", (name,))
        )
        if row is None:
            raise NotFoundError(f"No schedule named {name!r}; `loopml schedules` lists them.")
        return schedule_record(row)
