"""Step-run rows and the step cache (cache key -> output digests)."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from loopml.store import schema as s
from loopml.store.engine import Database
from loopml.store.records import StepRunRecord


class Steps:
    """Step runs and cache entries of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, conn: Connection, **values: Any) -> None:
        conn.execute(s.step_runs.insert().values(**values))

    def update(self, conn: Connection, step_run_id: str, **values: Any) -> None:
        conn.execute(s.step_runs.update().where(s.step_runs.c.id == step_run_id).values(**values))

    def for_run(self, run_id: str) -> list[StepRunRecord]:
        rows = self.db.read(
            lambda c: (
                c.execute(
                    sa.select(s.step_runs)
                    .where(s.step_runs.c.run_id == run_id)
                    .order_by(s.step_runs.c.position)
                )
                .mappings()
                .all()
            )
        )
        return [StepRunRecord(**dict(r)) for r in rows]

    def cache_get(self, key: str) -> dict[str, Any] | None:
        """``{"outputs": {ref: digest}, "logged": {...}}`` recorded under ``key``, or None on a miss."""
        row = self.db.read(
            lambda c: c.execute(
                sa.select(s.step_cache.c.outputs).where(s.step_cache.c.key == key)
            ).first()
        )
        return dict(json.loads(row[0])) if row else None

    def cache_put(
        self, conn: Connection, key: str, step: str, outputs: dict[str, Any], step_run_id: str
    ) -> None:
        mark = "?" if self.db.is_sqlite else "%s"
        conn.exec_driver_sql(
            "INSERT INTO step_cache (key, step, outputs, step_run_id, created_at) "
            f"VALUES ({', '.join([mark] * 5)}) ON CONFLICT (key) DO UPDATE SET outputs = excluded.outputs, "
            "step_run_id = excluded.step_run_id, created_at = excluded.created_at",
            [(key, step, json.dumps(outputs, sort_keys=True), step_run_id, time.time())],
        )
