"""The metadata store: runs, metrics, params, tags, step runs, artifacts rows, lineage, cache.

``MetadataStore(url)`` is cheap to build (no I/O); the first use opens the database,
creates or upgrades its schema under a lock, and marks runs with expired leases as
crashed. SQLite is the embedded default; PostgreSQL is the team backend.
"""

from __future__ import annotations

from typing import Any

from loopml.store.engine import HEAD_REVISION, Database
from loopml.store.lineage import Lineage
from loopml.store.metrics import Metrics
from loopml.store.records import ArtifactLink, ArtifactRecord, MetricPoint, RunRecord, StepRunRecord
from loopml.store.runs import Runs
from loopml.store.steps import Steps

__all__ = [
    "HEAD_REVISION",
    "ArtifactLink",
    "ArtifactRecord",
    "MetadataStore",
    "MetricPoint",
    "RunRecord",
    "StepRunRecord",
]


class MetadataStore:
    """All metadata of one store, grouped by noun: ``runs``, ``metrics``, ``steps``, ``lineage``.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///project/.loopml/store.db`` or
            ``postgresql+psycopg://user@host/db``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.db = Database(url)
        self.runs = Runs(self.db)
        self.metrics = Metrics(self.db)
        self.steps = Steps(self.db)
        self.lineage = Lineage(self.db)
        self._opened = False

    def open(self) -> MetadataStore:
        """Connect, bring the schema to head, sweep crashed runs. Idempotent."""
        if not self._opened:
            self.db.connect()
            self.runs.sweep_crashed()
            self._opened = True
        return self

    def search(
        self,
        filter: str | None = None,
        sort: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs matching a filter such as ``"metrics.rmse < 3 and params.alpha >= 0.1"``."""
        from loopml.store.search import build_query

        query = build_query(filter, sort, limit=limit, offset=offset)
        self.open()

        def run(conn: Any) -> list[RunRecord]:
            ids = list(conn.execute(query).scalars().all())
            return self.runs.load(ids, conn)

        return self.db.read(run)

    def close(self) -> None:
        self.db.dispose()
        self._opened = False

    def __repr__(self) -> str:
        return f"MetadataStore({self.db.safe_url!r})"
