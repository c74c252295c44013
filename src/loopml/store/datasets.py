"""Dataset names and their numbered versions.

A version is a row pointing at an artifact (the data blob) and, for tables, at a second
artifact (the stored profile). Versions are immutable; the same content added again under
the same name returns the existing version. References:

- ``NAME`` or ``NAME@latest``: the newest version;
- ``NAME@3``: version 3;
- ``NAME@<hex>``: the version whose digest starts with ``<hex>`` (at least 4 characters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loopml.errors import ConflictError, InvalidParameterError, NotFoundError
from loopml.store.engine import Database, Tx
from loopml.store.validate import versioned_name, versioned_ref

_HEX = set("0123456789abcdef")
_COLUMNS = (
    "name, number, digest, kind, filename, format, size, rows, columns, profile_digest, "
    "source, created_at"
)


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset."""

    name: str
    number: int
    digest: str
    kind: str  # file | folder
    filename: str
    format: str  # csv | parquet | jsonl | other
    size: int
    rows: int | None
    columns: int | None
    profile_digest: str | None
    source: str
    created_at: float

    @property
    def label(self) -> str:
        return f"{self.name}@{self.number}"


@dataclass(frozen=True)
class DatasetValidation:
    """One check of a version against a schema; both are stored as artifacts."""

    version: str  # NAME@N
    schema_digest: str
    report_digest: str
    ok: bool
    errors: int
    warnings: int
    created_at: float


def check_name(name: Any) -> str:
    """A dataset name: letters, digits, ``.``, ``_``, ``-``; no ``/``, ``..``, spaces or ``@``.

    Raises:
        InvalidParameterError: naming the value and the rule.
    """
    return versioned_name("Dataset", name, "'turbines' or 'turbines-2024'")


def parse_ref(ref: Any) -> tuple[str, str]:
    """``"turbines@3"`` -> ``("turbines", "3")``; a bare name means ``latest``."""
    return versioned_ref("Dataset", ref, "'turbines'")


# What keeps a dataset version from removal besides the runs that read it: (table, the
# noun for one, for several, the rest of the message).
_DEPENDENTS = (
    (
        "model_datasets",
        "training data of model version",
        "training data of model versions",
        "it stays so they can be reproduced and audited.",
    ),
    (
        "suite_versions",
        "data of evaluation suite",
        "data of evaluation suites",
        "it stays so their results can be reproduced. Delete those suites first "
        "(`loopml suite rm NAME@N`).",
    ),
)


class Datasets:
    """Dataset versions of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, version: DatasetVersion) -> tuple[DatasetVersion, bool]:
        """Record ``version`` (its ``number`` is ignored) unless the name already holds its
        digest; returns the stored version and whether it is new.

        The version's blobs must already be published and their rows reserved (see
        ``store/lineage.py``), so a version never names a missing blob.
        """
        check_name(version.name)

        def write(tx: Tx) -> tuple[DatasetVersion, bool]:
            tx.execute(
                "INSERT INTO datasets (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (version.name, version.created_at),
            )
            if (
                not self.db.is_sqlite
            ):  # one adder per name at a time; SQLite's BEGIN IMMEDIATE already is
                tx.execute("SELECT name FROM datasets WHERE name = ? FOR UPDATE", (version.name,))
            row = tx.one(
                f"SELECT {_COLUMNS} FROM dataset_versions WHERE name = ? AND digest = ?",
                (version.name, version.digest),
            )
            if row is not None:
                return _version(row), False
            top = tx.scalar(
                "SELECT MAX(number) FROM dataset_versions WHERE name = ?", (version.name,)
            )
            number = int(top or 0) + 1
            stored = DatasetVersion(**{**version.__dict__, "number": number})
            tx.execute(
                f"INSERT INTO dataset_versions ({_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _row(stored),
            )
            return stored, True

        return self.db.write(write)

    def get(self, ref: str) -> DatasetVersion:
        """The version a reference names.

        Raises:
            InvalidParameterError: the reference is malformed.
            NotFoundError: no such dataset or version (the message lists what exists).
        """
        name, version = parse_ref(ref)
        if version == "latest":
            row = self.db.read(
                lambda tx: tx.one(
                    f"SELECT {_COLUMNS} FROM dataset_versions WHERE name = ? "
                    "ORDER BY number DESC LIMIT 1",
                    (name,),
                )
            )
        elif version.isdigit() and len(version) <= 18:
            row = self.db.read(
                lambda tx: tx.one(
                    f"SELECT {_COLUMNS} FROM dataset_versions WHERE name = ? AND number = ?",
                    (name, int(version)),
                )
            )
        elif set(version.lower()) <= _HEX and 4 <= len(version) <= 64:
            prefix = version.lower()
            rows = self.db.read(
                lambda tx: tx.all(
                    f"SELECT {_COLUMNS} FROM dataset_versions WHERE name = ? AND digest >= ? "
                    "AND digest < ? ORDER BY number LIMIT 6",
                    (name, prefix, prefix + "g"),
                )
            )
            if len(rows) > 1:
                labels = ", ".join(f"{name}@{r[1]} ({str(r[2])[:12]})" for r in rows[:5])
                raise InvalidParameterError(
                    f"Dataset reference {ref!r} matches several versions: {labels}. "
                    "Give more digits or the version number."
                )
            row = rows[0] if rows else None
        else:
            raise InvalidParameterError(
                f"Dataset reference {ref!r}: the part after '@' must be 'latest', a version "
                "number or a digest prefix of at least 4 hex characters."
            )
        if row is None:
            raise NotFoundError(self._missing(name, ref))
        return _version(row)

    def _missing(self, name: str, ref: str) -> str:
        numbers = [
            int(r[0])
            for r in self.db.read(
                lambda tx: tx.all(
                    "SELECT number FROM dataset_versions WHERE name = ? ORDER BY number", (name,)
                )
            )
        ]
        if not numbers:
            return f"No dataset named {name!r}. List datasets with `loopml data list`."
        shown = ", ".join(f"@{n}" for n in numbers[-10:])
        return f"No version {ref!r}. {name} has versions {shown} (`loopml data versions {name}`)."

    def versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, oldest first (empty if the name is unknown)."""
        check_name(name)
        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT {_COLUMNS} FROM dataset_versions WHERE name = ? ORDER BY number", (name,)
            )
        )
        return [_version(r) for r in rows]

    def latest(self) -> list[DatasetVersion]:
        """The newest version of every dataset, by name."""
        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT {', '.join('v.' + c.strip() for c in _COLUMNS.split(','))} "
                "FROM dataset_versions v JOIN (SELECT name, MAX(number) AS top "
                "FROM dataset_versions GROUP BY name) t ON t.name = v.name AND t.top = v.number "
                "ORDER BY v.name"
            )
        )
        return [_version(r) for r in rows]

    def readers(self, digests: Sequence[str]) -> dict[str, list[str]]:
        """Run ids that read each digest (as a step input or a logged input), oldest first."""
        found: dict[str, list[str]] = {d: [] for d in digests}
        if not digests:
            return found
        rows = self.db.read(
            lambda tx: tx.all(
                "SELECT DISTINCT l.digest, l.run_id, r.started_at FROM artifact_links l "
                "JOIN runs r ON r.id = l.run_id "
                f"WHERE l.digest IN ({tx.marks(len(digests))}) AND l.direction = 'input' "
                "ORDER BY r.started_at, l.run_id",
                list(digests),
            )
        )
        for digest, run_id, _ in rows:
            found[str(digest)].append(str(run_id))
        return found

    def read_by(self, run_id: str) -> list[tuple[DatasetVersion, str | None]]:
        """The versions a run read, each with the step run that read it (None: the run)."""
        cols = ", ".join("v." + c.strip() for c in _COLUMNS.split(","))
        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT DISTINCT {cols}, l.step_run_id FROM dataset_versions v "
                "JOIN artifact_links l ON l.digest = v.digest "
                "WHERE l.run_id = ? AND l.direction = 'input' ORDER BY v.name, v.number",
                (run_id,),
            )
        )
        return [(_version(r[:-1]), None if r[-1] is None else str(r[-1])) for r in rows]

    def record_validation(self, version: DatasetVersion, check: DatasetValidation) -> None:
        """Link a validation (schema and report already stored) to ``version``."""

        def write(tx: Tx) -> None:
            tx.execute(
                "INSERT INTO dataset_validations (name, number, schema_digest, report_digest, ok, "
                "errors, warnings, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    version.name,
                    version.number,
                    check.schema_digest,
                    check.report_digest,
                    check.ok,
                    check.errors,
                    check.warnings,
                    check.created_at,
                ),
            )

        self.db.write(write)

    def validations(self, versions: Sequence[DatasetVersion]) -> dict[str, list[DatasetValidation]]:
        """The validations of each version (by label), oldest first."""
        found: dict[str, list[DatasetValidation]] = {v.label: [] for v in versions}
        names = sorted({v.name for v in versions})
        if not names:
            return found
        rows = self.db.read(
            lambda tx: tx.all(
                "SELECT name, number, schema_digest, report_digest, ok, errors, warnings, "
                f"created_at FROM dataset_validations WHERE name IN ({tx.marks(len(names))}) "
                "ORDER BY created_at, id",
                names,
            )
        )
        for name, number, schema, report, ok, errors, warnings, created in rows:
            label = f"{name}@{number}"
            if label in found:
                found[label].append(
                    DatasetValidation(
                        label,
                        str(schema),
                        str(report),
                        bool(ok),
                        int(errors),
                        int(warnings),
                        float(created),
                    )
                )
        return found

    def remove(self, ref: str) -> DatasetVersion:
        """Delete one version's row (its blobs become unreferenced: ``gc`` frees them).

        Raises:
            ConflictError: a run read this version (the message names the runs).
        """
        version = self.get(ref)

        def write(tx: Tx) -> None:
            for table, one, many, why in _DEPENDENTS:
                found = tx.all(
                    f"SELECT name, number FROM {table} WHERE dataset_name = ? "
                    "AND dataset_number = ? ORDER BY name, number LIMIT 6",
                    (version.name, version.number),
                )
                if found:
                    shown = ", ".join(f"{n}@{k}" for n, k in found[:5])
                    noun = one if len(found) == 1 else many
                    raise ConflictError(f"{version.label} is the {noun} {shown}; {why}")
            users = tx.all(
                "SELECT r.id FROM runs r WHERE EXISTS (SELECT 1 FROM artifact_links l "
                "WHERE l.run_id = r.id AND l.digest = ? AND l.direction = 'input') "
                "ORDER BY r.started_at, r.id LIMIT 6",
                (version.digest,),
            )
            if users:
                shown = ", ".join(str(u[0])[:8] for u in users[:5])
                more = " and more" if len(users) > 5 else ""
                noun = "run" if len(users) == 1 else "runs"
                raise ConflictError(
                    f"{version.label} is read by {noun} {shown}{more}; it stays so they can be "
                    "reproduced. Delete those runs first (`loopml runs delete RUN`)."
                )
            tx.execute(
                "DELETE FROM dataset_versions WHERE name = ? AND number = ?",
                (version.name, version.number),
            )
            left = tx.scalar(
                "SELECT COUNT(*) FROM dataset_versions WHERE name = ?", (version.name,)
            )
            if not left:
                tx.execute("DELETE FROM datasets WHERE name = ?", (version.name,))

        self.db.write(write)
        return version


def _row(v: DatasetVersion) -> tuple[Any, ...]:
    return (
        v.name,
        v.number,
        v.digest,
        v.kind,
        v.filename,
        v.format,
        v.size,
        v.rows,
        v.columns,
        v.profile_digest,
        v.source,
        v.created_at,
    )


def _version(row: tuple[Any, ...]) -> DatasetVersion:
    return DatasetVersion(
        name=str(row[0]),
        number=int(row[1]),
        digest=str(row[2]),
        kind=str(row[3]),
        filename=str(row[4]),
        format=str(row[5]),
        size=int(row[6]),
        rows=None if row[7] is None else int(row[7]),
        columns=None if row[8] is None else int(row[8]),
        profile_digest=None if row[9] is None else str(row[9]),
        source=str(row[10]),
        created_at=float(row[11]),
    )
