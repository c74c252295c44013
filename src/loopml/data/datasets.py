"""Datasets: files, folders and tables added as immutable, numbered versions.

``add_dataset("data/turbines.csv", name="turbines")`` stores the file's bytes as an artifact
(content-addressed: the same bytes are stored once), profiles it when it is a table
(CSV, Parquet, JSON lines, or a DataFrame), and records the next version number under the
name — unless the name already holds exactly this content, in which case that version is
returned and nothing is written. The shells (``loopml data …``) call these functions.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.artifacts.progress import reporting
from loopml.data.hash_cache import HashCache
from loopml.data.tables import SUFFIXES, as_arrow, file_format
from loopml.errors import InvalidParameterError, NotFoundError
from loopml.store.datasets import DatasetVersion, check_name, parse_ref

if TYPE_CHECKING:
    from loopml.tracking.client import Client

TABULAR = set(SUFFIXES.values())  # the formats read as tables


def _client(client: Client | None) -> Client:
    from loopml.tracking.client import given_or_default

    return given_or_default(client)


@dataclass(frozen=True)
class Dataset:
    """A dataset reference (``"turbines@latest"``, ``"turbines@3"``), resolved when used.

    Given to a step as an argument, the step receives the version's file (a ``Path``, or
    the folder for a folder version), the cache key holds the version's digest (so
    ``@latest`` re-runs the step when a new version is added), and the run's lineage names
    the version. Outside pipelines, ``path()`` and ``frame()`` read it directly and record
    it as an input of the active run, if any.
    """

    ref: str

    def __post_init__(self) -> None:
        parse_ref(self.ref)

    def __str__(self) -> str:
        return self.ref

    def version(self, client: Client | None = None) -> DatasetVersion:
        """The version this reference names now (``@latest`` moves when versions are added)."""
        return _client(client).dataset_version(self.ref)

    def __loopml_artifact__(self, client: Client) -> tuple[str, str]:
        """The digest a pipeline step receives and its name for people (``turbines@3``):
        the runner's protocol for inputs that are already stored."""
        version = self.version(client)
        return version.digest, version.label

    def path(self, client: Client | None = None) -> Path:
        """The version's file or folder, verified, read-only: do not write into it."""
        c = _client(client)
        version = self.version(c)
        _record_read(c, version)
        return Path(c.load_artifact(version.digest))

    def frame(self, client: Client | None = None) -> Any:
        """A tabular version as a pandas DataFrame (CSV, Parquet or JSON lines)."""
        c = _client(client)
        version = self.version(c)
        _require_table(version, "can be read as a frame; use .path() to read it")
        _record_read(c, version)
        return as_arrow(Path(c.load_artifact(version.digest))).to_pandas()


def dataset(ref: str) -> Dataset:
    """A reference to a dataset version, for a step argument or to read directly."""
    return Dataset(ref)


def _require_table(version: DatasetVersion, what: str) -> None:
    if version.format not in TABULAR:
        raise InvalidParameterError(
            f"{version.label} is a {version.kind} of format {version.format!r}: only tables "
            f"(CSV, Parquet, JSON lines) {what}."
        )


def _record_read(client: Client, version: DatasetVersion) -> None:
    from loopml.tracking.context import active_run

    run = active_run()
    if run is not None:
        run.log_input(version.digest, version.label)


def add_dataset(
    data: str | os.PathLike[str] | Any,
    *,
    name: str,
    client: Client | None = None,
    profile: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[DatasetVersion, bool]:
    """Add a file, a folder or a DataFrame as the next version of ``name``.

    Returns the version and whether it is new (False: the name already held this content).
    ``on_progress(done, total)`` follows a file's copy and hashing (bytes).

    Raises:
        InvalidParameterError: a bad name, or ``data`` is neither a path nor a table.
        NotFoundError: the path does not exist.
    """
    check_name(name)
    c = _client(client)
    hashes = HashCache(c.artifacts.local_folder)
    with tempfile.TemporaryDirectory(prefix="loopml-dataset-") as scratch:
        path, kind, fmt, source = _as_file(data, name, Path(scratch))
        users_file = kind == "file" and isinstance(data, str | os.PathLike)  # not a temp copy
        known = hashes.get(path) if users_file else None
        if known is not None:  # the same file, unchanged since it was hashed here
            existing = _existing(c, name, known)
            if existing is not None and c.artifacts.is_intact(existing.digest, existing.size):
                return existing, False
        # A table that cannot be read fails here, before anything is stored: no version,
        # no blob, no artifact record. (Content already stored under another version is
        # profiled again; reading it is the price of never storing a file we refuse.)
        summary = _profile(path) if profile and fmt in TABULAR else None
        total = 2 * path.stat().st_size if kind == "file" else 0  # copied, then hashed
        with reporting(on_progress if total else None, total):
            record = c.store_value(path)  # content-addressed: the same bytes are stored once
        if users_file:
            hashes.put(path, record.digest)
        existing = _existing(c, name, record.digest)
        if existing is not None:
            return existing, False
        rows = columns = profile_digest = None
        if summary is not None:
            rows, columns = summary.rows, len(summary.columns)
            profile_digest = c.store_value(summary.to_dict()).digest
    version = DatasetVersion(
        name=name,
        number=0,
        digest=record.digest,
        kind=kind,
        filename=path.name,
        format=fmt,
        size=record.size,
        rows=rows,
        columns=columns,
        profile_digest=profile_digest,
        source=source,
        created_at=time.time(),
    )
    return c.add_dataset_version(version)


def _existing(client: Client, name: str, digest: str) -> DatasetVersion | None:
    try:
        return client.dataset_version(f"{name}@{digest}")
    except NotFoundError:
        return None


def _as_file(data: Any, name: str, scratch: Path) -> tuple[Path, str, str, str]:
    """(file or folder to store, kind, format, source) for a path or a table.

    A DataFrame or Arrow table is written as a Parquet file (the same table gives the same
    bytes, so the same version), so every version is a file or a folder.
    """
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.exists():
            raise NotFoundError(
                f"No file or folder {os.fspath(data)!r} to add as dataset {name!r}. Check the "
                "path (it is relative to the current folder)."
            )
        if path.is_dir():
            return path, "folder", "other", os.fspath(data)
        return path, "file", file_format(path) or "other", os.fspath(data)
    type_name = f"{type(data).__module__}.{type(data).__qualname__}"
    if not type_name.startswith(("pandas.", "polars.", "pyarrow.")):
        raise InvalidParameterError(
            f"add_dataset: got a {type_name}; expected a path to a file or folder, or a "
            "pandas/polars DataFrame or pyarrow Table."
        )
    import pyarrow.parquet as pq

    target = scratch / f"{name}.parquet"
    pq.write_table(as_arrow(data, what="add_dataset"), target, compression="zstd")
    return target, "file", "parquet", type_name


def _profile(data: Any) -> Any:
    from loopml.data.profile import profile

    return profile(data)


def stored_profile(ref: str, client: Client | None = None) -> Any:
    """The profile of a tabular version: stored when it was added, else computed now."""
    from loopml.data.profile import Profile

    c = _client(client)
    version = c.dataset_version(ref)
    if version.profile_digest is not None:
        return Profile.from_dict(c.load_artifact(version.profile_digest))
    _require_table(version, "have a profile")
    return _profile(Path(c.load_artifact(version.digest)))


def validate_version(
    ref: str,
    schema: Any,
    *,
    client: Client | None = None,
    raise_on_error: bool = True,
) -> Any:
    """Validate a tabular version against ``schema`` and record the result with the version.

    ``schema`` is a ``Schema`` or the path of a schema file. The schema and the report are
    stored as artifacts and linked to the version (``loopml data versions`` shows the
    latest result), so later steps — a registry gate — can ask whether the data a model
    was trained on was validated. Returns the ``ValidationReport``.

    Raises:
        ValidationError: an ``error`` expectation failed (with ``raise_on_error``); the
            result is recorded first.
    """
    from loopml.data.errors import ValidationError
    from loopml.data.schema import Schema
    from loopml.data.validate import validate
    from loopml.store.datasets import DatasetValidation

    c = _client(client)
    version = c.dataset_version(ref)
    _require_table(version, "can be validated")
    if not isinstance(schema, Schema):
        schema = Schema.load(schema)
    report = validate(Path(c.load_artifact(version.digest)), schema, raise_on_error=False)
    check = DatasetValidation(
        version=version.label,
        schema_digest=c.store_value(schema.to_toml()).digest,
        report_digest=c.store_value(report.to_dict()).digest,
        ok=report.ok,
        errors=len(report.errors),
        warnings=len(report.warnings),
        created_at=time.time(),
    )
    c.record_validation(version, check)
    if raise_on_error and not report.ok:
        raise ValidationError(report)
    return report
