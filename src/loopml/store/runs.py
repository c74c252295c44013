"""Run rows: create with a per-pipeline number, heartbeat, finish, sweep the dead, read.

Liveness (RELIABILITY.md rule 3): a running run holds a lease (``heartbeat_at`` +
``lease_s``) and a random ``lease_token``. Only the token holder may heartbeat or finish
it; every state change is guarded by ``status = 'running'`` so finishing and being swept
as crashed cannot both win. Ownership never depends on "is that PID alive".
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from loopml.errors import ConflictError, InvalidParameterError, NotFoundError
from loopml.store import schema as s
from loopml.store.engine import Database
from loopml.store.records import RunRecord

FINAL_STATUSES = ("succeeded", "failed", "cancelled", "crashed")


class Runs:
    """Run rows of one :class:`~loopml.store.engine.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        *,
        pipeline: str,
        name: str | None = None,
        kind: str = "pipeline",
        host: str,
        pid: int,
        executor: str,
        lease_s: float,
        python_version: str | None = None,
    ) -> tuple[RunRecord, str]:
        """Insert a running run; returns the record and the lease token that owns it."""
        run_id = uuid.uuid4().hex
        token = uuid.uuid4().hex
        now = time.time()

        def insert(conn: Connection) -> int:
            # MAX() inside the write transaction (BEGIN IMMEDIATE / unique constraint on PG).
            top = conn.execute(
                sa.select(sa.func.max(s.runs.c.number)).where(s.runs.c.pipeline == pipeline)
            ).scalar()
            number = int(top or 0) + 1
            conn.execute(
                s.runs.insert().values(
                    id=run_id,
                    pipeline=pipeline,
                    number=number,
                    name=name or f"{pipeline}#{number}",
                    kind=kind,
                    status="running",
                    started_at=now,
                    heartbeat_at=now,
                    lease_s=lease_s,
                    lease_token=token,
                    host=host,
                    pid=pid,
                    executor=executor,
                    python_version=python_version,
                )
            )
            return number

        for _ in range(50):
            try:
                self.db.write(insert)
                break
            except SAIntegrityError:
                self.db.retries += 1
                continue  # another process took this number first: roll back and retry
        else:
            raise ConflictError(f"Could not allocate a run number for pipeline {pipeline!r}.")
        return self.get(run_id), token

    def heartbeat(self, run_id: str, token: str) -> bool:
        """Extend the lease; False when the run is no longer ours (swept or finished)."""
        now = time.time()

        def beat(conn: Connection) -> int:
            res = conn.execute(
                s.runs.update()
                .where(
                    s.runs.c.id == run_id,
                    s.runs.c.lease_token == token,
                    s.runs.c.status == "running",
                )
                .values(heartbeat_at=now)
            )
            return int(res.rowcount)

        return self.db.write(beat) == 1

    def finish(
        self,
        run_id: str,
        token: str,
        status: str,
        *,
        error: str | None = None,
        cpu_s: float | None = None,
        cost: float | None = None,
    ) -> bool:
        """Move a running run to a final status; False if it had already left ``running``."""
        if status not in FINAL_STATUSES:
            raise InvalidParameterError(
                f"Run status: got {status!r}; expected one of {FINAL_STATUSES}."
            )
        now = time.time()

        def end(conn: Connection) -> int:
            res = conn.execute(
                s.runs.update()
                .where(
                    s.runs.c.id == run_id,
                    s.runs.c.lease_token == token,
                    s.runs.c.status == "running",
                )
                .values(
                    status=status,
                    ended_at=now,
                    duration_s=now - s.runs.c.started_at,
                    error=error,
                    cpu_s=cpu_s,
                    cost=cost,
                )
            )
            return int(res.rowcount)

        return self.db.write(end) == 1

    def update_info(self, run_id: str, **values: Any) -> None:
        """Set capture fields (git, environment, cost) on a run, whatever its status."""
        if "environment" in values and not isinstance(values["environment"], str):
            values["environment"] = json.dumps(values["environment"], sort_keys=True)
        self.db.write(
            lambda conn: conn.execute(s.runs.update().where(s.runs.c.id == run_id).values(**values))
        )

    def sweep_crashed(self, now: float | None = None) -> int:
        """Mark every running run whose lease expired as ``crashed``; returns how many."""
        now = time.time() if now is None else now
        expired = (s.runs.c.status == "running") & (s.runs.c.heartbeat_at + s.runs.c.lease_s < now)
        found = self.db.read(
            lambda conn: conn.execute(sa.select(s.runs.c.id).where(expired).limit(1)).first()
        )
        if found is None:
            return 0

        def sweep(conn: Connection) -> int:
            ids = list(conn.execute(sa.select(s.runs.c.id).where(expired)).scalars())
            if not ids:
                return 0
            conn.execute(
                s.step_runs.update()
                .where(
                    s.step_runs.c.run_id.in_(ids), s.step_runs.c.status.in_(("running", "pending"))
                )
                .values(status="crashed")
            )
            res = conn.execute(
                s.runs.update()
                .where(s.runs.c.id.in_(ids), s.runs.c.status == "running")
                .values(
                    status="crashed",
                    ended_at=s.runs.c.heartbeat_at,
                    duration_s=s.runs.c.heartbeat_at - s.runs.c.started_at,
                    error="The run's process stopped sending heartbeats (killed or lost).",
                )
            )
            return int(res.rowcount)

        return self.db.write(sweep)

    # -- reading --------------------------------------------------------------------------

    def resolve(self, ref: str) -> str:
        """Turn a run reference into a run id: a full id, a unique id prefix, or ``pipeline#N``."""
        ref = ref.strip()
        if "#" in ref:
            pipeline, _, number = ref.rpartition("#")
            if not number.isdigit():
                raise InvalidParameterError(
                    f"Run reference {ref!r}: expected 'PIPELINE#NUMBER', e.g. 'train#3'."
                )
            row = self.db.read(
                lambda c: c.execute(
                    sa.select(s.runs.c.id).where(
                        s.runs.c.pipeline == pipeline, s.runs.c.number == int(number)
                    )
                ).first()
            )
            if row is None:
                raise NotFoundError(f"No run {ref!r}. List runs with `loopml runs`.")
            return str(row[0])
        if not ref or not all(ch in "0123456789abcdef" for ch in ref.lower()):
            raise InvalidParameterError(
                f"Run reference {ref!r}: expected a run id (hex, at least 4 characters) or 'PIPELINE#NUMBER'."
            )
        if len(ref) < 4:
            raise InvalidParameterError(
                f"Run id prefix {ref!r} is too short; give at least 4 characters."
            )
        ids = self.db.read(
            lambda c: (
                c.execute(
                    sa.select(s.runs.c.id).where(s.runs.c.id.like(ref.lower() + "%")).limit(3)
                )
                .scalars()
                .all()
            )
        )
        if not ids:
            raise NotFoundError(f"No run with id {ref!r}. List runs with `loopml runs`.")
        if len(ids) > 1:
            raise InvalidParameterError(
                f"Run id prefix {ref!r} is ambiguous ({', '.join(i[:12] for i in ids)} …); give more characters."
            )
        return str(ids[0])

    def get(self, ref: str) -> RunRecord:
        run_id = self.resolve(ref)
        records = self.load([run_id])
        return records[0]

    def load(self, run_ids: Iterable[str], conn: Connection | None = None) -> list[RunRecord]:
        """Records for ``run_ids`` in the given order, with params, metrics and tags."""
        ids = list(run_ids)
        if not ids:
            return []
        if conn is None:
            return self.db.read(lambda c: self.load(ids, c))
        rows: dict[str, Any] = {}
        extras: dict[str, dict[str, dict[str, Any]]] = {
            i: {"params": {}, "metrics": {}, "tags": {}} for i in ids
        }
        for chunk in _chunks(ids, 500):
            for row in conn.execute(sa.select(s.runs).where(s.runs.c.id.in_(chunk))).mappings():
                rows[row["id"]] = row
            for run_id, key, value in conn.execute(
                sa.select(s.params.c.run_id, s.params.c.key, s.params.c.value).where(
                    s.params.c.run_id.in_(chunk)
                )
            ):
                extras[run_id]["params"][key] = value
            for run_id, key, value in conn.execute(
                sa.select(
                    s.latest_metrics.c.run_id, s.latest_metrics.c.key, s.latest_metrics.c.value
                ).where(s.latest_metrics.c.run_id.in_(chunk))
            ):
                extras[run_id]["metrics"][key] = float("nan") if value is None else value
            for run_id, key, value in conn.execute(
                sa.select(s.tags.c.run_id, s.tags.c.key, s.tags.c.value).where(
                    s.tags.c.run_id.in_(chunk)
                )
            ):
                extras[run_id]["tags"][key] = value
        return [_record(rows[i], extras[i]) for i in ids if i in rows]


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _record(row: Any, extra: dict[str, dict[str, Any]]) -> RunRecord:
    env = json.loads(row["environment"]) if row["environment"] else {}
    return RunRecord(
        id=row["id"],
        pipeline=row["pipeline"],
        number=row["number"],
        name=row["name"],
        kind=row["kind"],
        status=row["status"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        duration_s=row["duration_s"],
        heartbeat_at=row["heartbeat_at"],
        host=row["host"],
        pid=row["pid"],
        executor=row["executor"],
        git_commit=row["git_commit"],
        git_dirty=row["git_dirty"],
        git_diff_digest=row["git_diff_digest"],
        python_version=row["python_version"],
        environment=env,
        cpu_s=row["cpu_s"],
        cost=row["cost"],
        error=row["error"],
        params=extra["params"],
        metrics=extra["metrics"],
        tags=extra["tags"],
    )
