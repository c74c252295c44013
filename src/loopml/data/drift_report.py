"""What ``loopml.data.drift.drift`` returns: per-column results and the report over them.

The report is a value: frozen dataclasses that round-trip through JSON (they are stored
with dataset versions), with three views on top — a pandas DataFrame, HTML (notebook and
a self-contained file) and a Rich table for the terminal. Non-finite floats (an infinite
chi-square, a NaN statistic of an all-missing column) are written to JSON as the strings
``"nan"``, ``"inf"`` and ``"-inf"``, so ``json.dumps(..., allow_nan=False)`` accepts the
dict and ``from_dict`` restores the floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

P_VALUE_METHODS = frozenset({"ks_pvalue", "chi2_pvalue"})
"""Methods whose score is a p-value: drift when it is *below* the threshold."""

FORMAT_VERSION = 1

NUMERIC_STATISTICS = ("psi", "ks", "ks_pvalue", "wasserstein", "wasserstein_normed")
CATEGORICAL_STATISTICS = ("psi", "chi2", "chi2_pvalue", "jensen_shannon")


@dataclass(frozen=True, slots=True)
class Histogram:
    """What a chart needs: numeric bins (``edges``) or category ``labels``, and both counts.

    Numeric histograms have equal-width bins over the range of both tables together;
    categorical ones list the most frequent categories of both tables.
    """

    reference: tuple[int, ...]
    current: tuple[int, ...]
    edges: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """Drift of one column: every statistic, the deciding method and its verdict.

    ``score`` is the value of ``statistics[method]``; ``drifted`` compares it with
    ``threshold`` (below for p-values, above for distances). ``new_categories`` and
    ``vanished_categories`` hold at most 10 ``(value, count)`` pairs, the most frequent
    first; ``new_categories_total`` / ``vanished_categories_total`` count them all.
    """

    column: str
    kind: str  # "numeric", "categorical" or "other" (not compared)
    statistics: dict[str, float]
    method: str
    threshold: float
    score: float
    drifted: bool
    count_reference: int
    count_current: int
    missing_rate_reference: float
    missing_rate_current: float
    new_categories: tuple[tuple[str, int], ...] = ()
    new_categories_total: int = 0
    vanished_categories: tuple[tuple[str, int], ...] = ()
    vanished_categories_total: int = 0
    histogram: Histogram | None = None
    note: str = ""

    @property
    def severity(self) -> float:
        """How far past its threshold the score is: 1.0 at the threshold, larger is worse.

        Distances give ``score / threshold``; p-values ``ln(p) / ln(threshold)``, so that
        p = threshold is 1 and p = 0 is infinite. This makes columns judged by different
        methods comparable for the worst-first order.
        """
        if math.isnan(self.score):
            return math.inf if self.drifted else 0.0
        if self.method in P_VALUE_METHODS:
            if self.score <= 0:
                return math.inf
            return math.log(self.score) / math.log(self.threshold) if self.score < 1 else 0.0
        return self.score / self.threshold if self.threshold > 0 else math.inf

    @property
    def missing_rate_change(self) -> float:
        return self.missing_rate_current - self.missing_rate_reference


@dataclass(frozen=True, slots=True)
class SchemaChanges:
    """Columns only in the current table, only in the reference, or with another dtype."""

    added: tuple[tuple[str, str], ...] = ()  # (column, dtype)
    removed: tuple[tuple[str, str], ...] = ()  # (column, dtype)
    changed: tuple[tuple[str, str, str], ...] = ()  # (column, reference dtype, current dtype)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def lines(self) -> list[str]:
        """One line of text per change, e.g. ``+ age (int64)``, ``~ id: int64 -> string``."""
        return [
            *(f"+ {c} ({t})" for c, t in self.added),
            *(f"- {c} ({t})" for c, t in self.removed),
            *(f"~ {c}: {a} -> {b}" for c, a, b in self.changed),
        ]


def sort_worst_first(columns: list[ColumnDrift]) -> tuple[ColumnDrift, ...]:
    """Drifted columns first, then by severity (largest first), then by name."""
    return tuple(sorted(columns, key=lambda c: (not c.drifted, -c.severity, c.column)))


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Drift between a reference and a current table, one ``ColumnDrift`` per shared column.

    ``columns`` are sorted worst first. Views: ``frame()``, ``to_dict()``, ``to_html()``,
    the notebook HTML and ``rich`` rendering (``rich.print(report)``).
    """

    columns: tuple[ColumnDrift, ...]
    schema: SchemaChanges
    rows_reference: int
    rows_current: int
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        """Names of the drifted columns, worst first."""
        return [c.column for c in self.columns if c.drifted]

    def __getitem__(self, column: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == column:
                return c
        from loopml.errors import NotFoundError, did_you_mean

        names = [c.column for c in self.columns]
        raise NotFoundError(
            f"Column {column!r} is not in this drift report.{did_you_mean(column, names)} "
            f"Columns: {names}"
        )

    def __repr__(self) -> str:
        return (
            f"<DriftReport {len(self.drifted)} of {len(self.columns)} columns drifted, "
            f"{self.rows_reference} -> {self.rows_current} rows>"
        )

    def frame(self) -> pd.DataFrame:
        """One row per column, worst first: verdict, method, score, every statistic."""
        import pandas as pd

        stats = NUMERIC_STATISTICS + CATEGORICAL_STATISTICS[1:]
        rows = []
        for c in self.columns:
            row: dict[str, Any] = {
                "column": c.column,
                "kind": c.kind,
                "drifted": c.drifted,
                "method": c.method,
                "score": c.score,
                "threshold": c.threshold,
            }
            row.update({s: c.statistics.get(s, math.nan) for s in stats})
            row.update(
                missing_reference=c.missing_rate_reference,
                missing_current=c.missing_rate_current,
                new_categories=c.new_categories_total,
                vanished_categories=c.vanished_categories_total,
                note=c.note,
            )
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite floats as ``"nan"``/``"inf"``/``"-inf"``)."""
        return {
            "format": FORMAT_VERSION,
            "rows_reference": self.rows_reference,
            "rows_current": self.rows_current,
            "thresholds": {k: _enc(v) for k, v in self.thresholds.items()},
            "schema": {
                "added": [list(a) for a in self.schema.added],
                "removed": [list(r) for r in self.schema.removed],
                "changed": [list(c) for c in self.schema.changed],
            },
            "columns": [_column_to_dict(c) for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """The report ``to_dict`` wrote."""
        schema = data["schema"]
        return cls(
            columns=tuple(_column_from_dict(c) for c in data["columns"]),
            schema=SchemaChanges(
                added=tuple((str(a[0]), str(a[1])) for a in schema["added"]),
                removed=tuple((str(r[0]), str(r[1])) for r in schema["removed"]),
                changed=tuple((str(c[0]), str(c[1]), str(c[2])) for c in schema["changed"]),
            ),
            rows_reference=int(data["rows_reference"]),
            rows_current=int(data["rows_current"]),
            thresholds={k: float(v) for k, v in data["thresholds"].items()},
        )

    def _repr_html_(self) -> str:
        from loopml.data.drift_html import report_html

        return report_html(self)

    def to_html(self, path: str | Path) -> Path:
        """Write a self-contained HTML page (inline CSS and SVG, no script, no network)."""
        from loopml.data.drift_html import page_html

        target = Path(path)
        target.write_text(page_html(self), encoding="utf-8")
        return target

    def __rich__(self) -> Table:
        from loopml.data.drift_html import rich_table

        return rich_table(self)


def _enc(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _column_to_dict(c: ColumnDrift) -> dict[str, Any]:
    h = c.histogram
    return {
        "column": c.column,
        "kind": c.kind,
        "statistics": {k: _enc(v) for k, v in c.statistics.items()},
        "method": c.method,
        "threshold": _enc(c.threshold),
        "score": _enc(c.score),
        "drifted": c.drifted,
        "count_reference": c.count_reference,
        "count_current": c.count_current,
        "missing_rate_reference": _enc(c.missing_rate_reference),
        "missing_rate_current": _enc(c.missing_rate_current),
        "new_categories": [list(p) for p in c.new_categories],
        "new_categories_total": c.new_categories_total,
        "vanished_categories": [list(p) for p in c.vanished_categories],
        "vanished_categories_total": c.vanished_categories_total,
        "histogram": None
        if h is None
        else {
            "reference": list(h.reference),
            "current": list(h.current),
            "edges": [_enc(e) for e in h.edges],
            "labels": list(h.labels),
        },
        "note": c.note,
    }


def _column_from_dict(d: dict[str, Any]) -> ColumnDrift:
    h = d["histogram"]
    return ColumnDrift(
        column=str(d["column"]),
        kind=str(d["kind"]),
        statistics={k: float(v) for k, v in d["statistics"].items()},
        method=str(d["method"]),
        threshold=float(d["threshold"]),
        score=float(d["score"]),
        drifted=bool(d["drifted"]),
        count_reference=int(d["count_reference"]),
        count_current=int(d["count_current"]),
        missing_rate_reference=float(d["missing_rate_reference"]),
        missing_rate_current=float(d["missing_rate_current"]),
        new_categories=tuple((str(v), int(n)) for v, n in d["new_categories"]),
        new_categories_total=int(d["new_categories_total"]),
        vanished_categories=tuple((str(v), int(n)) for v, n in d["vanished_categories"]),
        vanished_categories_total=int(d["vanished_categories_total"]),
        histogram=None
        if h is None
        else Histogram(
            reference=tuple(int(v) for v in h["reference"]),
            current=tuple(int(v) for v in h["current"]),
            edges=tuple(float(e) for e in h["edges"]),
            labels=tuple(str(s) for s in h["labels"]),
        ),
        note=str(d["note"]),
    )


def fmt(value: float) -> str:
    """A statistic for a table cell: 4 significant digits, ``inf``/``nan`` spelled out."""
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def escape_text(value: str) -> str:
    return escape(value, quote=True)
