"""The metadata store: runs, metrics, params, tags, step runs, artifacts rows, lineage, cache.

``MetadataStore(url)`` is cheap to build (no I/O); the first use opens the database and
creates or upgrades its schema under a lock. Each operation is a method that owns its
transaction; callers never see a connection. SQLite is the embedded default; PostgreSQL
is the team backend.
"""

from __future__ import annotations

from loopml.store.datasets import Datasets, DatasetValidation, DatasetVersion
from loopml.store.engine import HEAD_REVISION, Database, Tx
from loopml.store.lineage import Lineage
from loopml.store.metrics import Metrics
from loopml.store.models import AliasEvent, Models, ModelVersion
from loopml.store.monitors import AlertRecord, MonitorRecord, Monitors, WindowRecord
from loopml.store.predictions import PredictionRow, Predictions
from loopml.store.records import ArtifactLink, ArtifactRecord, MetricPoint, RunRecord, StepRunRecord
from loopml.store.runs import Runs
from loopml.store.schedules import FireRecord, ScheduleRecord, Schedules
from loopml.store.status import RunStatus, StepStatus
from loopml.store.steps import Steps, StepWrites
from loopml.store.suites import Evaluation, Suites, SuiteVersion
from loopml.store.tokens import Role, TokenRecord, Tokens

__all__ = [
    "HEAD_REVISION",
    "AlertRecord",
    "AliasEvent",
    "ArtifactLink",
    "ArtifactRecord",
    "DatasetValidation",
    "DatasetVersion",
    "Evaluation",
    "FireRecord",
    "MetadataStore",
    "MetricPoint",
    "ModelVersion",
    "MonitorRecord",
    "PredictionRow",
    "Role",
    "RunRecord",
    "RunStatus",
    "ScheduleRecord",
    "StepRunRecord",
    "StepStatus",
    "StepWrites",
    "SuiteVersion",
    "TokenRecord",
    "WindowRecord",
]


class MetadataStore:
    """All metadata of one store, grouped by noun: ``runs``, ``metrics``, ``steps``, ``lineage``,
    ``datasets``, ``suites``, ``models``, ``predictions``, ``schedules``, ``tokens``, ``monitors``.

    Args:
        url: ``sqlite:///project/.loopml/store.db`` or ``postgresql://user@host/db``.
        readonly: open an existing store for reading only; never create or change it.
    """

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        self.url = url
        self.db = Database(url, readonly=readonly)
        self.runs = Runs(self.db)
        self.metrics = Metrics(self.db)
        self.steps = Steps(self.db)
        self.lineage = Lineage(self.db)
        self.datasets = Datasets(self.db)
        self.suites = Suites(self.db)
        self.models = Models(self.db)
        self.predictions = Predictions(self.db)
        self.schedules = Schedules(self.db)
        self.tokens = Tokens(self.db)
        self.monitors = Monitors(self.db)

    @property
    def readonly(self) -> bool:
        """Opened by a reading command: never creates or upgrades the store."""
        return self.db.readonly

    def open(self) -> MetadataStore:
        """Connect and bring the schema to head. Idempotent."""
        self.db.connect()
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
        from loopml.store.search import build_query, probes, walks

        build_query(filter, sort, limit=limit, offset=offset)  # malformed text fails here
        counts = probes(filter, sort, limit=limit, offset=offset)
        self.open()

        def read(tx: Tx) -> list[RunRecord]:
            walk = (
                None
                if counts is None
                else walks([None if p is None else tx.scalar(p.sql, p.params) for p in counts])
            )
            query = build_query(filter, sort, limit=limit, offset=offset, walk=walk)
            return self.runs.load([str(r[0]) for r in tx.all(query.sql, query.params)], tx)

        return self.db.read(read)

    def close(self) -> None:
        self.db.dispose()

    def __repr__(self) -> str:
        return f"MetadataStore({self.db.safe_url!r})"
