"""``Client``: one store (metadata + artifacts) and the one API over it.

The CLI, the REST server and notebooks all go through these methods, so they can never
disagree. ``Client()`` finds the project like the CLI does;
``Client(store_uri=…, artifacts_uri=…)`` points anywhere, and two clients on two stores
work side by side in one process: each owns its connections, artifact store, materializer
registry and heartbeat. ``Client(readonly=True)`` only reads: it never creates a store,
folders or files (it still marks dead runs crashed when the store is writable, the one
write every ``loopml`` process does, RELIABILITY.md rule 3).

The module-level functions (``loopml.runs()``, ``start_run``, ``load``) use
:func:`default_client`, one per store location per process.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml._crashpoints import crash_point
from loopml._process import owner_alive
from loopml.config import Settings, load_settings
from loopml.errors import (
    InvalidParameterError,
    LoopmlError,
    NotFoundError,
    StoreUnavailableError,
)
from loopml.store import ArtifactLink, ArtifactRecord, MetadataStore, MetricPoint, RunRecord
from loopml.store.records import StepRunRecord
from loopml.tracking.liveness import Heartbeat

if TYPE_CHECKING:
    import pandas as pd

    from loopml.artifacts import ArtifactStore
    from loopml.artifacts.materializers import MaterializerRegistry
    from loopml.store.datasets import DatasetValidation, DatasetVersion
    from loopml.store.models import AliasEvent, ModelVersion
    from loopml.store.suites import Evaluation, SuiteVersion
    from loopml.tracking.fsck import FsckReport
    from loopml.tracking.gc import GcReport
    from loopml.tracking.run import Run
    from loopml.tracking.transfers import SyncReport


class Client:
    """Access to one store.

    Args:
        settings: project settings (default: found from the working directory).
        store_uri: override the metadata store (an SQLAlchemy-style URL or a SQLite path).
        artifacts_uri: override the artifact store (a folder or an fsspec URL).
        readonly: only read; never create or change the store (see the module doc).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store_uri: str | None = None,
        artifacts_uri: str | None = None,
        readonly: bool = False,
    ) -> None:
        settings = settings or load_settings()
        if store_uri is not None:
            from loopml.config import store_url

            settings = replace(settings, store_uri=store_url(store_uri, settings.root))
        if artifacts_uri is not None:
            from loopml.config import artifacts_location

            settings = replace(
                settings, artifacts_uri=artifacts_location(artifacts_uri, settings.root)
            )
        self.settings = settings
        self.readonly = readonly
        self.metadata = MetadataStore(settings.store_uri, readonly=readonly)
        self.heartbeat = Heartbeat()
        self._artifacts: ArtifactStore | None = None
        self._materializers: MaterializerRegistry | None = None
        self._opened = False
        self._diffs: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def materializers(self) -> MaterializerRegistry:
        """This client's materializers: the process-wide registrations plus its own."""
        if self._materializers is None:
            from loopml.artifacts.materializers import MaterializerRegistry, default_registry

            self._materializers = MaterializerRegistry(parent=default_registry)
        return self._materializers

    @property
    def artifacts(self) -> ArtifactStore:
        """The blob store (content-addressed, verified on read)."""
        if self._artifacts is None:
            from loopml.artifacts import ArtifactStore

            self._artifacts = ArtifactStore.from_uri(
                self.settings.artifacts_uri,
                storage_options=self.settings.storage_options,
                materializers=self.materializers,
            )
        return self._artifacts

    @property
    def store_location(self) -> str:
        """Where the metadata store is, for people: its path, or its URL without a password."""
        return self.metadata.db.where

    def open(self) -> Client:
        """Open the metadata store, mark dead runs crashed, clear dead writers' temp files."""
        if not self._opened:
            self.metadata.open()
            self.sweep()
            if not self.readonly:
                self.artifacts.clean_temp()
            self._opened = True
        return self

    def sweep(self) -> int:
        """Mark runs whose process is gone (or whose lease expired elsewhere) as crashed."""
        try:
            return self.metadata.runs.sweep_crashed(owner_alive)
        except StoreUnavailableError:
            if self.readonly:
                return 0  # a read-only or full store can still be read
            raise

    # -- runs: reading --------------------------------------------------------------------

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
        self.sweep()  # a long-lived process (a notebook) sees dead runs too
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
                "status": str(r.status),
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

    def resolve_run(self, ref: str) -> str:
        """A run id from an id, a unique id prefix (≥ 4 characters) or ``pipeline#N``."""
        self.open()
        return self.metadata.runs.resolve(ref)

    def get_run(self, ref: str) -> Run:
        """A run by id, id prefix or ``pipeline#number``."""
        from loopml.tracking.run import Run

        self.open()
        self.sweep()
        return Run(self, self.metadata.runs.resolve(ref))

    def run_record(self, ref: str) -> RunRecord:
        """One run's stored record (attributes, params, latest metrics, tags, environment)."""
        self.open()
        self.sweep()
        return self.metadata.runs.get(ref)

    def steps(self, ref: str) -> list[StepRunRecord]:
        """The steps of a run, in pipeline order, with why each ran or was reused."""
        return self.metadata.steps.for_run(self.resolve_run(ref))

    def metric_history(self, ref: str, key: str) -> list[MetricPoint]:
        """Every point of one metric series of a run, sorted by step."""
        return self.metadata.metrics.history(self.resolve_run(ref), key)

    def metric_histories(
        self, ref: str, keys: Sequence[str], *, min_points: int = 1
    ) -> dict[str, list[MetricPoint]]:
        """Several series of one run in one query; keys with fewer than ``min_points`` are left out."""
        return self.metadata.metrics.histories(self.resolve_run(ref), keys, min_points=min_points)

    def metric_page(
        self, ref: str, key: str, *, step_from: int = 0, limit: int = 1000
    ) -> list[MetricPoint]:
        """At most ``limit`` points of one series from ``step_from`` on: reads a long series
        a page at a time (the next page starts after the last step returned)."""
        return self.metadata.metrics.page(
            self.resolve_run(ref), key, step_from=step_from, limit=limit
        )

    def metric_span(self, ref: str, key: str) -> tuple[int, int, int]:
        """(number of points, first step, last step) of one series; (0, 0, 0) if it has none."""
        return self.metadata.metrics.span(self.resolve_run(ref), key)

    def metric_summaries(
        self, ref: str, *, limit: int = 100, offset: int = 0
    ) -> list[tuple[str, int, float, int]]:
        """(key, last step, last value, number of points) of a run's series, by key."""
        return self.metadata.metrics.summaries(self.resolve_run(ref), limit=limit, offset=offset)

    def links(self, *, digest: str | None = None, run: str | None = None) -> list[ArtifactLink]:
        """Lineage links: of one artifact (who produced, read or logged it) or of one run."""
        self.open()
        run_id = self.metadata.runs.resolve(run) if run is not None else None
        return self.metadata.lineage.links(digest=digest, run_id=run_id)

    def run_output(self, ref: str, output: str) -> tuple[RunRecord, str]:
        """A run and the digest of its step output named ``output`` (e.g. ``"train"``).

        Raises:
            NotFoundError: no such run, or no such output (the message lists its outputs).
        """
        record = self.run_record(ref)
        outputs = [link for link in self.links(run=record.id) if link.direction == "output"]
        chosen = [link for link in outputs if link.name == output]
        if not chosen:
            names = ", ".join(sorted({link.name for link in outputs})) or "none"
            raise NotFoundError(
                f"Run {record.name} has no output named {output!r}. Its outputs: {names}."
            )
        return record, chosen[-1].digest

    def runs_by_id(self, run_ids: Sequence[str]) -> dict[str, RunRecord]:
        """Records of several runs by full id (missing ids are left out)."""
        self.open()
        return {r.id: r for r in self.metadata.runs.load(run_ids)}

    def run_counts(self) -> dict[str, int]:
        """The number of runs of each pipeline that has any, by name (no run is loaded)."""
        self.open()
        return self.metadata.runs.counts_by_pipeline()

    # -- runs: writing --------------------------------------------------------------------

    def start_run(
        self,
        name: str = "adhoc",
        *,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Start an ad-hoc tracked run (use it as a context manager).

        With ``run_id``, attach to a run another process started and still owns: metrics,
        params, tags and artifacts logged here land in that run (e.g. from each rank of a
        distributed training job); the owner ends it.
        """
        from loopml.tracking.run import Run

        self.open()
        if run_id is not None:
            run = Run.attach(self, run_id)
        else:
            run = Run.start(self, name, kind="adhoc")
        for key, value in (tags or {}).items():
            run.set_tag(key, value)
        return run

    def delete_runs(
        self, refs: Sequence[str] = (), *, filter: str | None = None, dry_run: bool = False
    ) -> tuple[list[RunRecord], dict[str, int]]:
        """Hard-delete runs (by reference and/or filter) with their metrics, steps, links and
        cache entries; returns (the runs, counts). Blobs are freed by :meth:`gc`.

        Raises:
            ConflictError: a chosen run is still running; nothing is deleted.
        """
        self.open()
        ids = [self.metadata.runs.resolve(r) for r in refs]
        if filter is not None:
            ids += [r.id for r in self.metadata.search(filter, limit=10_000)]
        if not refs and filter is None:
            raise InvalidParameterError(
                "runs delete: give runs (ids, prefixes or PIPELINE#N) or --filter; nothing "
                "is deleted by default."
            )
        records = self.metadata.runs.load(ids)
        if dry_run or not records:
            return records, {"runs": 0, "cache_entries": 0}
        return records, self.metadata.runs.delete([r.id for r in records])

    def tag_run(self, ref: str, tags: dict[str, Any], *, remove: Sequence[str] = ()) -> None:
        """Set (or remove) tags on a run, finished or not."""
        self.metadata.runs.set_tags(self.resolve_run(ref), tags, remove)

    def rename_run(self, ref: str, name: str) -> None:
        self.metadata.runs.rename(self.resolve_run(ref), name)

    # -- artifacts ------------------------------------------------------------------------

    def artifact(self, ref: str) -> ArtifactRecord:
        """An artifact's row by digest or unique prefix (≥ 6 hex characters)."""
        self.open()
        return self.metadata.lineage.get(ref)

    def list_artifacts(
        self, *, limit: int = 100, offset: int = 0, run: str | None = None
    ) -> list[ArtifactRecord]:
        """Artifacts, newest first; only those linked to ``run`` when given."""
        self.open()
        run_id = self.metadata.runs.resolve(run) if run is not None else None
        return self.metadata.lineage.recent(limit=limit, offset=offset, run_id=run_id)

    def store_value(self, value: Any) -> ArtifactRecord:
        """Materialize ``value`` into the artifact store and record its row; returns the record.

        The row is claimed before the blob is published, so a concurrent ``gc`` can never
        delete the blob between the two (see ``store/lineage.py``).
        """
        self.open()
        staged = self.artifacts.stage(value)
        try:
            record = ArtifactRecord(
                digest=staged.digest,
                materializer=staged.materializer,
                type_name=staged.type_name,
                size=staged.size,
                metadata=staged.metadata,
                created_at=time.time(),
            )
            self.metadata.lineage.reserve([record])
            self.artifacts.publish(staged)
            crash_point("blob-published")
        finally:
            staged.discard()
        return record

    def load_artifact(self, ref: str) -> Any:
        """Load an artifact by digest (or unique prefix); the blob is verified first."""
        record = self.artifact(ref)
        return self.artifacts.get_value(record.digest, record.materializer, record.metadata)

    def export_artifact(
        self, ref: str, dest: str | Path | None = None, *, force: bool = False
    ) -> Path:
        """Write an artifact where a user wants it (verified first); returns the path written.

        Raises:
            ConflictError: ``dest`` exists and ``force`` is false.
        """
        record = self.artifact(ref)
        return self.artifacts.export(
            record.digest, record.materializer, dest, force=force, metadata=record.metadata
        )

    def git_row(self, git: dict[str, Any]) -> dict[str, Any]:
        """Git state as stored on a run: the diff (when dirty) becomes an artifact once per text."""
        row = {"commit": git.get("commit"), "dirty": git.get("dirty"), "diff_digest": None}
        diff = git.get("diff")
        if diff:
            key = hashlib.sha256(diff.encode("utf-8", "backslashreplace")).hexdigest()
            with self._lock:
                digest = self._diffs.get(key)
            if digest is None:
                try:
                    digest = self.store_value(diff.encode("utf-8", "backslashreplace")).digest
                except LoopmlError:
                    digest = None  # capture is best effort: never fail a run over its diff
                with self._lock:
                    if digest is not None:
                        self._diffs[key] = digest
            row["diff_digest"] = digest
        return row

    # -- maintenance ----------------------------------------------------------------------

    def fsck(
        self, *, repair: bool = False, on_progress: Callable[[int, int], None] | None = None
    ) -> FsckReport:
        """Check the whole store (and repair what can be repaired); see ``loopml fsck``."""
        from loopml.tracking.fsck import fsck

        return fsck(self, repair=repair, on_progress=on_progress)

    # -- datasets (adding one lives in loopml.data: it profiles tables) --------------------

    def datasets(self) -> list[DatasetVersion]:
        """The newest version of every dataset, by name."""
        return self.open().metadata.datasets.latest()

    def dataset_version(self, ref: str) -> DatasetVersion:
        """The version ``NAME``, ``NAME@latest``, ``NAME@N`` or ``NAME@DIGEST`` names."""
        return self.open().metadata.datasets.get(ref)

    def dataset_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, oldest first."""
        return self.open().metadata.datasets.versions(name)

    def dataset_readers(self, versions: list[DatasetVersion]) -> dict[str, list[str]]:
        """Run ids that read each version (by digest), oldest first."""
        return self.open().metadata.datasets.readers([v.digest for v in versions])

    def datasets_read(self, run: str) -> list[tuple[DatasetVersion, str | None]]:
        """The dataset versions a run read, each with the id of the step run that read it."""
        self.open()
        return self.metadata.datasets.read_by(self.metadata.runs.resolve(run))

    def add_dataset_version(self, version: DatasetVersion) -> tuple[DatasetVersion, bool]:
        """Record a version whose blobs are stored; the name's existing version if it holds
        the same digest. Returns the version and whether it is new."""
        return self.open().metadata.datasets.add(version)

    def record_validation(self, version: DatasetVersion, check: DatasetValidation) -> None:
        """Link a validation of ``version`` (schema and report stored as artifacts)."""
        self.open().metadata.datasets.record_validation(version, check)

    def dataset_validations(
        self, versions: list[DatasetVersion]
    ) -> dict[str, list[DatasetValidation]]:
        """Each version's validations (by ``NAME@N``), oldest first."""
        return self.open().metadata.datasets.validations(versions)

    def remove_dataset_version(self, ref: str) -> DatasetVersion:
        """Remove a version no run read (``ConflictError`` names the runs that did)."""
        return self.open().metadata.datasets.remove(ref)

    # -- evaluation suites (defining and evaluating live in loopml.evaluation) -----------

    def suites(self) -> list[SuiteVersion]:
        """The newest version of every suite, by name."""
        return self.open().metadata.suites.latest()

    def suite_version(self, ref: str) -> SuiteVersion:
        """The version ``NAME``, ``NAME@latest`` or ``NAME@N`` names."""
        return self.open().metadata.suites.get(ref)

    def suite_versions(self, name: str) -> list[SuiteVersion]:
        """Every version of suite ``name``, oldest first."""
        return self.open().metadata.suites.versions(name)

    def add_suite_version(self, version: SuiteVersion) -> tuple[SuiteVersion, bool]:
        """Record a suite definition whose artifacts are stored; the name's existing version if
        it holds the same definition. Returns the version and whether it is new."""
        return self.open().metadata.suites.add(version)

    def remove_suite_version(self, ref: str) -> SuiteVersion:
        """Remove a suite version and its evaluations (``gc`` frees their blobs)."""
        return self.open().metadata.suites.remove(ref)

    def record_evaluation(self, evaluation: Evaluation, *, replace: bool = False) -> Evaluation:
        """Store an evaluation whose artifacts are stored (see ``store/suites.py``)."""
        return self.open().metadata.suites.record(evaluation, replace=replace)

    def find_evaluation(
        self, suite: SuiteVersion, model_digest: str, config_hash: str
    ) -> Evaluation | None:
        """The stored evaluation of a model on a suite under the same settings, if any."""
        return self.open().metadata.suites.find(suite, model_digest, config_hash)

    def evaluations(self, suite: SuiteVersion) -> list[Evaluation]:
        """Every evaluation on one suite version, oldest first."""
        return self.open().metadata.suites.evaluations(suite)

    def evaluation(self, id: int) -> Evaluation:
        """One evaluation by its number."""
        return self.open().metadata.suites.evaluation(id)

    def run_evaluations(self, run: str) -> list[Evaluation]:
        """The evaluations linked to a run: of the models it made, or judged inside it."""
        self.open()
        return self.metadata.suites.of_run(self.metadata.runs.resolve(run))

    def model_evaluations(self, model_digest: str) -> list[Evaluation]:
        """Every evaluation of one model (by the digest of its artifact), on any suite."""
        return self.open().metadata.suites.of_model(model_digest)

    # -- model registry (registering and promoting live in loopml.registry) -------------

    def models(self) -> list[ModelVersion]:
        """The newest version of every registered model, by name."""
        return self.open().metadata.models.latest()

    def model_version(self, ref: str) -> ModelVersion:
        """The version ``NAME``, ``NAME@latest``, ``NAME@N`` or ``NAME@ALIAS`` names."""
        return self.open().metadata.models.get(ref)

    def model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of model ``name``, oldest first."""
        return self.open().metadata.models.versions(name)

    def run_models(self, run: str) -> list[ModelVersion]:
        """The model versions registered from a run, by name and number."""
        self.open()
        return self.metadata.models.of_run(self.metadata.runs.resolve(run))

    def model_aliases(self, name: str) -> dict[str, int]:
        """Alias -> version number, for one model."""
        return self.open().metadata.models.aliases(name)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every move of a model's aliases (or of one alias), oldest first: the audit trail."""
        return self.open().metadata.models.history(name, alias)

    def delete_model_version(self, ref: str) -> ModelVersion:
        """Delete a version no alias holds (``ConflictError`` names the alias that does)."""
        return self.open().metadata.models.delete_version(ref)

    def gc(
        self,
        *,
        dry_run: bool = False,
        grace_s: float = 3600.0,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> GcReport:
        """Delete blobs no run, cache entry or version references; see ``loopml gc``."""
        from loopml.tracking.gc import gc

        return gc(self, dry_run=dry_run, grace_s=grace_s, on_progress=on_progress)

    def push(
        self,
        *,
        dry_run: bool = False,
        jobs: int | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> SyncReport:
        """Copy the blobs the remote in ``loopml.toml`` lacks to it, verified; see ``loopml push``.

        Raises:
            RemoteError: no ``[remote]``, the remote cannot be used, or the transfer was cut
                (a rerun resumes).
        """
        from loopml.tracking.sync import push

        return push(self, dry_run=dry_run, jobs=jobs, on_progress=on_progress)

    def pull(
        self,
        *,
        dry_run: bool = False,
        jobs: int | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> SyncReport:
        """Fetch the blobs missing or damaged here from the remote, verified; see ``loopml pull``.

        Blobs not on the remote, or corrupt there, are in ``report.failed``, not installed.

        Raises:
            RemoteError: no ``[remote]``, the remote cannot be used, or the transfer was cut.
        """
        from loopml.tracking.sync import pull

        return pull(self, dry_run=dry_run, jobs=jobs, on_progress=on_progress)

    def close(self) -> None:
        self.metadata.close()
        self._opened = False

    def __repr__(self) -> str:
        return f"Client(store={self.metadata.db.safe_url!r}, artifacts={self.settings.artifacts_uri!r})"


_clients: dict[tuple[str, str], Client] = {}
_clients_lock = threading.Lock()


def given_or_default(client: Client | None) -> Client:
    """``client`` opened, or the project's default client (the library functions' rule)."""
    return (client if client is not None else default_client()).open()


def default_client() -> Client:
    """Inside a step: the client of the run it belongs to (on a cluster worker, the store the
    run uses, not whatever a copy of the project there would find). Elsewhere: the client for
    the project found from the working directory (cached per location)."""
    from loopml.tracking.context import active_run

    run = active_run()
    if run is not None:
        return run.client
    settings = load_settings()
    key = (settings.store_uri, settings.artifacts_uri)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = Client(settings)
    return client
