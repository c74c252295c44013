"""Logged predictions, and the ground truth that arrives for them later.

A prediction row is written once (its id is unique; writing the same id again keeps the
first, so a retried batch never doubles a row). Feedback is one label per prediction id;
a later label replaces an earlier one, since a correction is the newer truth. Reading
joins the two: each prediction with its label, or none yet. Shadow predictions carry the
id of the prediction that answered (``shadow_of``) and join that prediction's label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from loopml.errors import InvalidParameterError
from loopml.store.engine import Database, Tx

#: A prediction id: letters, digits, ``.``, ``_`` and ``-`` (what ``loopml serve`` issues).
PREDICTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_PAGE = 1_000_000


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """One logged prediction; ``inputs`` and ``output`` are JSON text."""

    id: str
    model: str
    version: int
    variant: str
    at: float
    inputs: str
    output: str
    shadow_of: str | None = None
    label: str | None = None  # JSON text of the feedback, when some arrived
    feedback_at: float | None = None
    latency_ms: float | None = None  # the request's time in `loopml serve`


def check_prediction_id(value: object) -> str:
    if not isinstance(value, str) or not PREDICTION_ID.fullmatch(value):
        shown = repr(value)[:80]
        raise InvalidParameterError(
            f"prediction_id {shown}: expected an id returned by /predict (letters, digits, "
            "'.', '_' and '-', at most 64 characters)."
        )
    return value


class Predictions:
    """The prediction log of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, rows: Sequence[PredictionRow]) -> None:
        """Write ``rows`` in one transaction; an id already written is kept as it was."""
        if not rows:
            return
        values = [
            (
                r.id,
                r.model,
                r.version,
                r.variant,
                r.at,
                r.inputs,
                r.output,
                r.shadow_of,
                r.latency_ms,
            )
            for r in rows
        ]

        def write(tx: Tx) -> None:
            tx.executemany(
                "INSERT INTO predictions (id, model, version, variant, at, inputs, output, "
                "shadow_of, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                values,
            )

        self.db.write(write)

    def add_feedback(self, items: Sequence[tuple[str, str, float]]) -> None:
        """Record ``(prediction_id, label_json, at)`` items; a newer label replaces an older."""
        for pid, _, _ in items:
            check_prediction_id(pid)
        if not items:
            return

        def write(tx: Tx) -> None:
            tx.executemany(
                "INSERT INTO prediction_feedback (prediction_id, label, at) VALUES (?, ?, ?) "
                "ON CONFLICT (prediction_id) DO UPDATE SET label = excluded.label, "
                "at = excluded.at",
                list(items),
            )

        self.db.write(write)

    def query(
        self,
        model: str,
        *,
        since: float | None = None,
        until: float | None = None,
        version: int | None = None,
        variant: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        answered_only: bool = False,
    ) -> list[PredictionRow]:
        """The predictions of ``model`` in time order, each with its feedback if any.

        ``answered_only`` leaves out shadow predictions (the rows a shadow model logged
        beside the answer), which is what a monitor of the served model reads.
        """
        if limit is not None and not 0 < limit <= _MAX_PAGE:
            raise InvalidParameterError(
                f"predictions limit: got {limit!r}; expected 1 to {_MAX_PAGE:,}."
            )
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidParameterError(f"predictions offset: got {offset!r}; expected >= 0.")
        where = ["p.model = ?"]
        params: list[object] = [model]
        if answered_only:
            where.append("p.shadow_of IS NULL")
        for clause, value in (
            ("p.at >= ?", since),
            ("p.at < ?", until),
            ("p.version = ?", version),
            ("p.variant = ?", variant),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = (
            "SELECT p.id, p.model, p.version, p.variant, p.at, p.inputs, p.output, p.shadow_of, "
            "f.label, f.at, p.latency_ms FROM predictions p LEFT JOIN prediction_feedback f ON "
            "f.prediction_id = COALESCE(p.shadow_of, p.id) "
            f"WHERE {' AND '.join(where)} ORDER BY p.at, p.id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        elif offset:
            sql += f" LIMIT {_MAX_PAGE}"  # SQLite takes OFFSET only after a LIMIT
        if offset:
            sql += f" OFFSET {int(offset)}"
        return self.db.read(lambda tx: [PredictionRow(*row) for row in tx.all(sql, params)])

    def window_counts(self, model: str, since: float, until: float) -> tuple[int, int]:
        """``(predictions, labelled)`` of ``model`` answered in ``[since, until)``."""
        row = self.db.read(
            lambda tx: tx.one(
                "SELECT COUNT(*), COUNT(f.prediction_id) FROM predictions p LEFT JOIN "
                "prediction_feedback f ON f.prediction_id = p.id WHERE p.model = ? AND "
                "p.shadow_of IS NULL AND p.at >= ? AND p.at < ?",
                (model, since, until),
            )
        )
        return (0, 0) if row is None else (int(row[0]), int(row[1] or 0))

    def count(self, model: str | None = None) -> int:
        if model is None:
            return int(self.db.read(lambda tx: tx.scalar("SELECT COUNT(*) FROM predictions")))
        return int(
            self.db.read(
                lambda tx: tx.scalar("SELECT COUNT(*) FROM predictions WHERE model = ?", (model,))
            )
        )
