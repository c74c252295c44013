"""The fires of schedules, from claimed to finished: owner, lease, retries, crashes.

A ``pending`` fire is started by whichever scheduler takes it first (:meth:`Fires.take`: a
conditional ``pending -> running`` update, so exactly one wins) and is then ``running``
under that scheduler's lease (``lease_until``, on the database's clock, renewed every tick).
A scheduler that dies (``kill -9``, a lost host) stops renewing; once its lease has expired,
or at once when its process is gone from this machine (pid + start time, so a reused pid
does not fool it), any scheduler marks its fires ``crashed`` (:meth:`Fires.sweep`). A
crashed fire is never started again: its run died with its scheduler (the child is killed
with its parent) and the run sweep marks that run ``crashed`` too.

A failed attempt with retries left goes back to ``pending`` with ``not_before`` pushed out
by the back-off; whichever scheduler is alive then takes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopml.errors import NotFoundError
from loopml.store.engine import Database, Tx
from loopml.store.status import FireStatus, RunStatus

#: Overlap policies (``loopml.store.schedules.OVERLAP_POLICIES``) and the kind of a run-now fire.
WAIT, SKIP, MANUAL = "wait", "skip", "manual"

FIRE_COLUMNS = (
    "id, schedule, due_at, kind, status, attempt, run_id, owner, lease_until, not_before, "
    "claimed_at, started_at, ended_at, error, requested_by"
)


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
    requested_by: str | None = None


@dataclass(frozen=True, slots=True)
class FireView:
    """A fire with what its run recorded: status, duration, cost."""

    fire: FireRecord
    run_status: RunStatus | None
    run_duration_s: float | None
    run_cost: float | None
    run_error: str | None


def _skip_overlapping(tx: Tx, fire_id: int, running: tuple[Any, ...], *, now: float) -> None:
    from datetime import UTC, datetime

    due = (
        datetime.fromtimestamp(running[1], UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )
    tx.execute(
        "UPDATE schedule_fires SET status = ?, ended_at = ?, error = ? WHERE id = ? AND status = ?",
        (
            FireStatus.SKIPPED,
            now,
            f"fire {running[0]} (due {due}) was still running; overlap 'skip' "
            "records a fire due meanwhile as skipped (overlap 'wait' would start it after)",
            fire_id,
            FireStatus.PENDING,
        ),
    )


def fire_record(row: tuple[Any, ...]) -> FireRecord:
    values = list(row)
    values[4] = FireStatus(values[4])
    return FireRecord(*values)


def _view(row: tuple[Any, ...]) -> FireView:
    n = len(FIRE_COLUMNS.split(","))
    status, duration, cost, error = row[n:]
    return FireView(
        fire_record(row[:n]), None if status is None else RunStatus(status), duration, cost, error
    )


_F_COLUMNS = ", ".join(f"f.{c.strip()}" for c in FIRE_COLUMNS.split(","))
_VIEW = (
    f"SELECT {_F_COLUMNS}, r.status, r.duration_s, r.cost, r.error FROM schedule_fires f "
    "LEFT JOIN runs r ON r.id = f.run_id"
)


class Fires:
    """Fires of every schedule of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading ----------------------------------------------------------------------------

    def get(self, fire_id: int) -> FireRecord:
        row = self.db.read(
            lambda tx: tx.one(f"SELECT {FIRE_COLUMNS} FROM schedule_fires WHERE id = ?", (fire_id,))
        )
        if row is None:
            raise NotFoundError(f"No schedule fire with id {fire_id}.")
        return fire_record(row)

    def history(self, schedule: str, *, limit: int = 20, offset: int = 0) -> list[FireView]:
        """The fires of ``schedule``, newest due time first, with their runs."""
        rows = self.db.read(
            lambda tx: tx.all(
                f"{_VIEW} WHERE f.schedule = ? ORDER BY f.due_at DESC, f.id DESC LIMIT ? OFFSET ?",
                (schedule, limit, offset),
            )
        )
        return [_view(r) for r in rows]

    def count(self, schedule: str) -> int:
        return int(
            self.db.read(
                lambda tx: tx.scalar(
                    "SELECT COUNT(*) FROM schedule_fires WHERE schedule = ?", (schedule,)
                )
            )
        )

    def last_finished(self, schedule: str) -> FireView | None:
        """The newest fire that ran and ended (not ``skipped``), with its run."""
        rows = self.db.read(
            lambda tx: tx.all(
                f"{_VIEW} WHERE f.schedule = ? AND f.status IN (?, ?, ?) "
                "ORDER BY f.ended_at DESC, f.id DESC LIMIT 1",
                (schedule, FireStatus.SUCCEEDED, FireStatus.FAILED, FireStatus.CRASHED),
            )
        )
        return _view(rows[0]) if rows else None

    def running(self, owner: str) -> list[FireRecord]:
        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT {FIRE_COLUMNS} FROM schedule_fires WHERE owner = ? AND status = ?",
                (owner, FireStatus.RUNNING),
            )
        )
        return [fire_record(r) for r in rows]

    # -- a scheduler's writes ---------------------------------------------------------------

    def take(self, owner: str, *, now: float, lease_s: float, limit: int = 16) -> list[FireRecord]:
        """Start up to ``limit`` pending fires that are due: ``pending -> running`` as ``owner``.

        Each update is guarded by ``status = 'pending'``, so of two schedulers taking the
        same fire exactly one changes the row; the other skips it.

        The schedule's overlap policy applies when another fire of it is ``running`` (under
        any scheduler): ``wait`` leaves the fire pending until that one ends; ``skip``
        records it ``skipped`` with the reason (a ``manual`` fire waits instead: run-now is
        an explicit ask); ``allow`` starts it. To decide that race-free, the transaction
        first locks the rows of those schedules (in name order, as :meth:`Schedules.claim`
        does), so two schedulers never both see "nothing running" on PostgreSQL either.
        """

        def write(tx: Tx) -> list[FireRecord]:
            candidates = tx.all(
                "SELECT f.id, f.schedule, f.kind, s.overlap FROM schedule_fires f "
                "LEFT JOIN schedules s ON s.name = f.schedule "
                "WHERE f.status = ? AND f.not_before <= ? AND NOT ("
                "  s.overlap = ? AND EXISTS (SELECT 1 FROM schedule_fires r "
                "    WHERE r.schedule = f.schedule AND r.status = ?)) "
                "ORDER BY f.not_before, f.due_at LIMIT ?",
                (FireStatus.PENDING, now, WAIT, FireStatus.RUNNING, limit),
            )
            guarded = sorted({row[1] for row in candidates if row[3] in (WAIT, SKIP)})
            for name in guarded:  # a row lock per schedule: one taker at a time decides
                tx.execute("UPDATE schedules SET generation = generation WHERE name = ?", (name,))
            taken = []
            for fire_id, schedule, kind, overlap in candidates:
                if overlap in (WAIT, SKIP):
                    running = tx.one(
                        "SELECT id, due_at FROM schedule_fires WHERE schedule = ? AND status = ? "
                        "ORDER BY due_at LIMIT 1",
                        (schedule, FireStatus.RUNNING),
                    )
                    if running is not None:
                        if overlap == SKIP and kind != MANUAL:
                            _skip_overlapping(tx, fire_id, running, now=now)
                        continue
                changed = tx.execute(
                    f"UPDATE schedule_fires SET status = ?, owner = ?, lease_until = {tx.now} + ?, "
                    "attempt = attempt + 1, started_at = ?, run_id = NULL, error = NULL "
                    "WHERE id = ? AND status = ?",
                    (FireStatus.RUNNING, owner, lease_s, now, fire_id, FireStatus.PENDING),
                )
                if changed == 1:
                    row = tx.one(
                        f"SELECT {FIRE_COLUMNS} FROM schedule_fires WHERE id = ?", (fire_id,)
                    )
                    assert row is not None
                    taken.append(fire_record(row))
            return taken

        return self.db.write(write)

    def set_run(self, fire_id: int, owner: str, run_id: str) -> bool:
        return self._owned(fire_id, owner, "run_id = ?", (run_id,))

    def renew(self, owner: str, *, lease_s: float) -> set[int]:
        """Extend the lease of every fire ``owner`` runs; returns the ids still its own."""

        def write(tx: Tx) -> set[int]:
            tx.execute(
                f"UPDATE schedule_fires SET lease_until = {tx.now} + ? "
                "WHERE owner = ? AND status = ?",
                (lease_s, owner, FireStatus.RUNNING),
            )
            rows = tx.all(
                "SELECT id FROM schedule_fires WHERE owner = ? AND status = ?",
                (owner, FireStatus.RUNNING),
            )
            return {int(r[0]) for r in rows}

        return self.db.write(write)

    def finish(
        self, fire_id: int, owner: str, status: FireStatus, *, now: float, error: str | None
    ) -> bool:
        """End a fire this owner runs; False when it is no longer its own (swept)."""
        return self._owned(
            fire_id,
            owner,
            "status = ?, ended_at = ?, error = ?, lease_until = NULL",
            (status, now, error),
        )

    def retry(self, fire_id: int, owner: str, *, not_before: float, error: str) -> bool:
        """Put a failed attempt back to ``pending``, to start again at ``not_before``."""
        return self._owned(
            fire_id,
            owner,
            "status = ?, owner = NULL, lease_until = NULL, not_before = ?, error = ?",
            (FireStatus.PENDING, not_before, error),
        )

    def _owned(self, fire_id: int, owner: str, sets: str, params: tuple[Any, ...]) -> bool:
        return (
            self.db.write(
                lambda tx: tx.execute(
                    f"UPDATE schedule_fires SET {sets} WHERE id = ? AND owner = ? AND status = ?",
                    (*params, fire_id, owner, FireStatus.RUNNING),
                )
            )
            == 1
        )

    def sweep(self, *, now: float, alive: Callable[[str | None], bool | None]) -> list[FireRecord]:
        """Mark ``crashed`` the running fires whose scheduler is gone; returns them.

        Gone: its process is not alive on this machine (``alive(owner)`` is False), or its
        lease has expired and it is not known to be alive here.
        """

        def candidates(tx: Tx) -> list[tuple[Any, ...]]:
            return tx.all(
                f"SELECT {FIRE_COLUMNS}, CASE WHEN lease_until < {tx.now} THEN 1 ELSE 0 END "
                "FROM schedule_fires WHERE status = ?",
                (FireStatus.RUNNING,),
            )

        dead: list[tuple[FireRecord, bool]] = []
        for row in self.db.read(candidates):
            fire = fire_record(row[:-1])
            owner_alive = alive((fire.owner or "").partition("/")[0])
            if owner_alive is False or (row[-1] and owner_alive is not True):
                dead.append((fire, owner_alive is False))
        if not dead:
            return []

        def write(tx: Tx) -> list[FireRecord]:
            crashed = []
            for fire, gone in dead:
                changed = tx.execute(
                    "UPDATE schedule_fires SET status = ?, ended_at = ?, lease_until = NULL, "
                    "error = ? WHERE id = ? AND owner = ? AND status = ? "
                    f"AND (? OR lease_until < {tx.now})",
                    (
                        FireStatus.CRASHED,
                        now,
                        f"its scheduler {fire.owner} stopped while the fire ran (killed or "
                        "lost); a crashed fire is not started again",
                        fire.id,
                        fire.owner,
                        FireStatus.RUNNING,
                        gone,
                    ),
                )
                if changed == 1:
                    crashed.append(fire)
            return crashed

        return self.db.write(write)
