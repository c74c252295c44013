"""Evaluation suites (numbered, frozen definitions) and the evaluations of models on them.

A suite version freezes what a model is judged on: a dataset version, the target, the task,
the split and its resulting row indices (an artifact, with their hash), and options (slices,
features, threshold, metrics). Versions are immutable; defining a name again with another
definition adds a version, the same definition again returns the existing one. References
are ``NAME``/``NAME@latest`` and ``NAME@N``.

An evaluation is one model judged by one suite version under one set of evaluation settings
(resamples, seed, confidence, metrics: ``config_hash``), so judging the same model again
finds the stored result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from loopml.errors import InvalidParameterError, NotFoundError
from loopml.store.engine import Database, Tx
from loopml.store.validate import versioned_name, versioned_ref

_EXAMPLE = "'churn-holdout'"
_VERSION_COLUMNS = (
    "name, number, dataset_name, dataset_number, dataset_digest, target, task, split, options, "
    "indices_digest, indices_hash, definition_hash, test_rows, created_at"
)
_EVAL_COLUMNS = (
    "id, suite_name, suite_number, model_digest, model_label, run_id, config_hash, metrics, "
    "predictions_digest, result_digest, created_at"
)


@dataclass(frozen=True)
class SuiteVersion:
    """One frozen definition of a suite."""

    name: str
    number: int
    dataset_name: str
    dataset_number: int
    dataset_digest: str
    target: str
    task: str  # binary | multiclass | regression | forecasting
    split: str  # canonical split text
    options: dict[str, Any]
    indices_digest: str
    indices_hash: str
    definition_hash: str
    test_rows: int
    created_at: float

    @property
    def label(self) -> str:
        return f"{self.name}@{self.number}"

    @property
    def dataset(self) -> str:
        return f"{self.dataset_name}@{self.dataset_number}"


@dataclass(frozen=True)
class Evaluation:
    """One model judged by one suite version; ``metrics`` maps name -> (value, low, high)."""

    id: int
    suite: str  # NAME@N
    model_digest: str
    model_label: str
    run_id: str | None
    config_hash: str
    metrics: dict[str, tuple[float, float, float]]
    predictions_digest: str
    result_digest: str
    created_at: float


def check_suite_name(name: Any) -> str:
    """A suite name: letters, digits, ``.``, ``_``, ``-``; no ``/``, ``..``, spaces or ``@``."""
    return versioned_name("Suite", name, _EXAMPLE)


class Suites:
    """Suite versions and evaluations of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, version: SuiteVersion) -> tuple[SuiteVersion, bool]:
        """Record ``version`` (its ``number`` is ignored) unless the name already holds its
        definition; returns the stored version and whether it is new. Its artifacts must be
        stored and their rows reserved first."""
        check_suite_name(version.name)

        def write(tx: Tx) -> tuple[SuiteVersion, bool]:
            tx.execute(
                "INSERT INTO suites (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (version.name, version.created_at),
            )
            if not self.db.is_sqlite:  # one definer per name at a time
                tx.execute("SELECT name FROM suites WHERE name = ? FOR UPDATE", (version.name,))
            row = tx.one(
                f"SELECT {_VERSION_COLUMNS} FROM suite_versions WHERE name = ? "
                "AND definition_hash = ?",
                (version.name, version.definition_hash),
            )
            if row is not None:
                return _suite_version(row), False
            top = tx.scalar(
                "SELECT MAX(number) FROM suite_versions WHERE name = ?", (version.name,)
            )
            stored = SuiteVersion(**{**version.__dict__, "number": int(top or 0) + 1})
            tx.execute(
                f"INSERT INTO suite_versions ({_VERSION_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stored.name,
                    stored.number,
                    stored.dataset_name,
                    stored.dataset_number,
                    stored.dataset_digest,
                    stored.target,
                    stored.task,
                    stored.split,
                    json.dumps(stored.options, sort_keys=True),
                    stored.indices_digest,
                    stored.indices_hash,
                    stored.definition_hash,
                    stored.test_rows,
                    stored.created_at,
                ),
            )
            return stored, True

        return self.db.write(write)

    def get(self, ref: str) -> SuiteVersion:
        """The version ``NAME``, ``NAME@latest`` or ``NAME@N`` names.

        Raises:
            InvalidParameterError: a malformed reference.
            NotFoundError: no such suite or version (the message lists what exists).
        """
        name, version = versioned_ref("Suite", ref, _EXAMPLE)
        if version == "latest":
            sql = (
                f"SELECT {_VERSION_COLUMNS} FROM suite_versions WHERE name = ? "
                "ORDER BY number DESC LIMIT 1"
            )
            args: tuple[Any, ...] = (name,)
        elif version.isdigit() and len(version) <= 18:
            sql = f"SELECT {_VERSION_COLUMNS} FROM suite_versions WHERE name = ? AND number = ?"
            args = (name, int(version))
        else:
            raise InvalidParameterError(
                f"Suite reference {ref!r}: the part after '@' must be 'latest' or a version "
                f"number, e.g. '{name}@latest' or '{name}@1'."
            )
        row = self.db.read(lambda tx: tx.one(sql, args))
        if row is None:
            numbers = [v.number for v in self.versions(name)]
            if not numbers:
                raise NotFoundError(
                    f"No suite named {name!r}. List suites with `loopml suites`; define one with "
                    "`loopml suite create`."
                )
            shown = ", ".join(f"@{n}" for n in numbers[-10:])
            raise NotFoundError(f"No version {ref!r}. {name} has versions {shown}.")
        return _suite_version(row)

    def versions(self, name: str) -> list[SuiteVersion]:
        """Every version of ``name``, oldest first."""
        check_suite_name(name)
        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT {_VERSION_COLUMNS} FROM suite_versions WHERE name = ? ORDER BY number",
                (name,),
            )
        )
        return [_suite_version(r) for r in rows]

    def latest(self) -> list[SuiteVersion]:
        """The newest version of every suite, by name."""
        cols = ", ".join("v." + c.strip() for c in _VERSION_COLUMNS.split(","))
        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT {cols} FROM suite_versions v JOIN (SELECT name, MAX(number) AS top "
                "FROM suite_versions GROUP BY name) t ON t.name = v.name AND t.top = v.number "
                "ORDER BY v.name"
            )
        )
        return [_suite_version(r) for r in rows]

    def remove(self, ref: str) -> SuiteVersion:
        """Delete one suite version and its evaluations (their blobs go at the next ``gc``)."""
        version = self.get(ref)

        def write(tx: Tx) -> None:
            tx.execute(
                "DELETE FROM evaluations WHERE suite_name = ? AND suite_number = ?",
                (version.name, version.number),
            )
            tx.execute(
                "DELETE FROM suite_versions WHERE name = ? AND number = ?",
                (version.name, version.number),
            )
            if not tx.scalar("SELECT COUNT(*) FROM suite_versions WHERE name = ?", (version.name,)):
                tx.execute("DELETE FROM suites WHERE name = ?", (version.name,))

        self.db.write(write)
        return version

    # -- evaluations ----------------------------------------------------------------------

    def record(self, evaluation: Evaluation, *, replace: bool = False) -> Evaluation:
        """Store an evaluation (its ``id`` is ignored); with ``replace``, one stored under the
        same suite version, model and settings is replaced, else that one is returned."""
        name, number = _label(evaluation.suite)

        def write(tx: Tx) -> Evaluation:
            key = (name, number, evaluation.model_digest, evaluation.config_hash)
            where = "suite_name = ? AND suite_number = ? AND model_digest = ? AND config_hash = ?"
            if replace:
                tx.execute(f"DELETE FROM evaluations WHERE {where}", key)
            else:
                row = tx.one(f"SELECT {_EVAL_COLUMNS} FROM evaluations WHERE {where}", key)
                if row is not None:
                    return _evaluation(row)
            tx.execute(
                "INSERT INTO evaluations (suite_name, suite_number, model_digest, model_label, "
                "run_id, config_hash, metrics, predictions_digest, result_digest, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    number,
                    evaluation.model_digest,
                    evaluation.model_label,
                    evaluation.run_id,
                    evaluation.config_hash,
                    json.dumps({k: list(v) for k, v in evaluation.metrics.items()}),
                    evaluation.predictions_digest,
                    evaluation.result_digest,
                    evaluation.created_at,
                ),
            )
            row = tx.one(f"SELECT {_EVAL_COLUMNS} FROM evaluations WHERE {where}", key)
            assert row is not None
            return _evaluation(row)

        return self.db.write(write)

    def find(self, suite: SuiteVersion, model_digest: str, config_hash: str) -> Evaluation | None:
        """The stored evaluation of this model under these settings, if any."""
        row = self.db.read(
            lambda tx: tx.one(
                f"SELECT {_EVAL_COLUMNS} FROM evaluations WHERE suite_name = ? AND "
                "suite_number = ? AND model_digest = ? AND config_hash = ?",
                (suite.name, suite.number, model_digest, config_hash),
            )
        )
        return None if row is None else _evaluation(row)

    def evaluations(self, suite: SuiteVersion) -> list[Evaluation]:
        """Every evaluation on ``suite``, oldest first."""
        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT {_EVAL_COLUMNS} FROM evaluations WHERE suite_name = ? AND "
                "suite_number = ? ORDER BY created_at, id",
                (suite.name, suite.number),
            )
        )
        return [_evaluation(r) for r in rows]

    def evaluation(self, id: int) -> Evaluation:
        """One evaluation by id.

        Raises:
            NotFoundError: no such evaluation.
        """
        row = self.db.read(
            lambda tx: tx.one(f"SELECT {_EVAL_COLUMNS} FROM evaluations WHERE id = ?", (id,))
        )
        if row is None:
            raise NotFoundError(
                f"No evaluation #{id}. List a suite's evaluations with `loopml leaderboard SUITE`."
            )
        return _evaluation(row)

    def of_run(self, run_id: str) -> list[Evaluation]:
        """The evaluations linked to a run (its models, or judged inside it), oldest first."""
        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT {_EVAL_COLUMNS} FROM evaluations WHERE run_id = ? ORDER BY created_at, id",
                (run_id,),
            )
        )
        return [_evaluation(r) for r in rows]

    def of_model(self, model_digest: str) -> list[Evaluation]:
        """Every evaluation of one model, on any suite, oldest first."""
        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT {_EVAL_COLUMNS} FROM evaluations WHERE model_digest = ? "
                "ORDER BY created_at, id",
                (model_digest,),
            )
        )
        return [_evaluation(r) for r in rows]


def _label(label: str) -> tuple[str, int]:
    name, _, number = label.partition("@")
    return name, int(number)


def _suite_version(row: tuple[Any, ...]) -> SuiteVersion:
    return SuiteVersion(
        name=str(row[0]),
        number=int(row[1]),
        dataset_name=str(row[2]),
        dataset_number=int(row[3]),
        dataset_digest=str(row[4]),
        target=str(row[5]),
        task=str(row[6]),
        split=str(row[7]),
        options=json.loads(row[8]),
        indices_digest=str(row[9]),
        indices_hash=str(row[10]),
        definition_hash=str(row[11]),
        test_rows=int(row[12]),
        created_at=float(row[13]),
    )


def _evaluation(row: tuple[Any, ...]) -> Evaluation:
    metrics = {k: (float(v[0]), float(v[1]), float(v[2])) for k, v in json.loads(row[7]).items()}
    return Evaluation(
        id=int(row[0]),
        suite=f"{row[1]}@{row[2]}",
        model_digest=str(row[3]),
        model_label=str(row[4]),
        run_id=None if row[5] is None else str(row[5]),
        config_hash=str(row[6]),
        metrics=metrics,
        predictions_digest=str(row[8]),
        result_digest=str(row[9]),
        created_at=float(row[10]),
    )
