"""``Client``: one store (metadata + artifacts) and the reading API over it.

``Client()`` finds the project like the CLI does; ``Client(store_uri=…, artifacts_uri=…)``
points anywhere. The module-level functions use :func:`default_client`, one per store
location per process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml._crashpoints import crash_point
from loopml.config import Settings, load_settings
from loopml.store import ArtifactRecord, MetadataStore, RunRecord

if TYPE_CHECKING:
    import pandas as pd

    from loopml.artifacts import ArtifactStore
    from loopml.tracking.run import Run


class Client:
    """Access to one store.

    Args:
        settings: project settings (default: found from the working directory).
        store_uri: override the metadata store (an SQLAlchemy URL or a SQLite path).
        artifacts_uri: override the artifact store (a folder or an fsspec URL).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store_uri: str | None = None,
        artifacts_uri: str | None = None,
    ) -> None:
        settings = settings or load_settings()
        if store_uri is not None:
            from loopml.config import _store_uri

            settings = replace(settings, store_uri=_store_uri(store_uri, settings.root))
        if artifacts_uri is not None:
            from loopml.config import _artifacts_uri

            settings = replace(settings, artifacts_uri=_artifacts_uri(artifacts_uri, settings.root))
        self.settings = settings
        self.metadata = MetadataStore(settings.store_uri)
        self._artifacts: ArtifactStore | None = None
        self._opened = False

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            from loopml.artifacts import ArtifactStore

            self._artifacts = ArtifactStore(self.settings.artifacts_uri)
        return self._artifacts

    def open(self) -> Client:
        """Open the metadata store (schema, crash sweep) and clear dead writers' temp files."""
        if not self._opened:
            self.metadata.open()
            self.artifacts.clean_temp()
            self._opened = True
        return self

    # -- artifacts ------------------------------------------------------------------------

    def store_value(self, value: Any) -> ArtifactRecord:
        """Materialize ``value`` into the artifact store and record its row; returns the record."""
        self.open()
        if isinstance(value, Path):
            stored = self.artifacts.put_file(value)
        else:
            stored = self.artifacts.put_value(value)
        crash_point("blob-published")
        record = ArtifactRecord(
            digest=stored.digest,
            materializer=stored.materializer,
            type_name=stored.type_name,
            size=stored.size,
            metadata=stored.metadata,
            created_at=time.time(),
        )
        self.metadata.db.write(lambda conn: self.metadata.lineage.insert_artifacts([record], conn))
        return record

    def load_artifact(self, ref: str) -> Any:
        """Load an artifact by digest (or unique prefix); the blob is verified first."""
        self.open()
        record = self.metadata.lineage.get(ref)
        return self.artifacts.get_value(record.digest, record.materializer, record.metadata)

    # -- runs -----------------------------------------------------------------------------

    def search_runs(
        self,
        filter: str | None = None,
        sort: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs matching ``filter`` (e.g. ``"metrics.auc > 0.9 and status = 'succeeded'"``)."""
        self.open()
        self.metadata.runs.sweep_crashed()  # a long-lived process (a notebook) sees dead runs too
        return self.metadata.search(filter, sort, limit=limit, offset=offset)

    def runs(
        self, filter: str | None = None, sort: str | None = None, *, limit: int = 100
    ) -> pd.DataFrame:
        """The matching runs as a pandas DataFrame: attributes, ``params.*``, ``metrics.*``, ``tags.*``."""
        import pandas as pd

        rows = []
        for r in self.search_runs(filter, sort, limit=limit):
            row: dict[str, Any] = {
                "id": r.id,
                "run": r.label,
                "pipeline": r.pipeline,
                "status": r.status,
                "started": pd.Timestamp(r.started_at, unit="s", tz="UTC"),
                "duration_s": r.duration_s,
                "cost": r.cost,
                "git_commit": r.git_commit,
            }
            row.update({f"params.{k}": v for k, v in r.params.items()})
            row.update({f"metrics.{k}": v for k, v in r.metrics.items()})
            row.update({f"tags.{k}": v for k, v in r.tags.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def get_run(self, ref: str) -> Run:
        """A run by id, id prefix or ``pipeline#number``."""
        from loopml.tracking.run import Run

        self.open()
        self.metadata.runs.sweep_crashed()
        return Run(self, self.metadata.runs.resolve(ref))

    def start_run(self, name: str = "adhoc", *, tags: dict[str, str] | None = None) -> Run:
        """Start an ad-hoc tracked run (use it as a context manager)."""
        from loopml.tracking.run import Run

        self.open()
        run = Run.start(self, name, kind="adhoc")
        for key, value in (tags or {}).items():
            run.set_tag(key, value)
        return run

    def close(self) -> None:
        self.metadata.close()

    def __repr__(self) -> str:
        return f"Client(store={self.metadata.db.safe_url!r}, artifacts={self.settings.artifacts_uri!r})"


_clients: dict[tuple[str, str], Client] = {}
_clients_lock = threading.Lock()


def default_client() -> Client:
    """The client for the project found from the working directory (cached per location)."""
    settings = load_settings()
    key = (settings.store_uri, settings.artifacts_uri)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = Client(settings)
    return client
