"""The statistics of one monitoring window against its reference.

``window_statistics(reference, current, features=…)`` returns a ``WindowStats``:

- **drift** per feature: the data module's ``drift()`` (PSI, Kolmogorov–Smirnov and
  Wasserstein for numeric columns, chi-square and Jensen–Shannon for categorical ones, the
  Evidently-style verdict, missing rates, new categories). One implementation: monitoring
  calls it, it does not compute drift a second way.
- **quality** per feature: the missing rate, the out-of-range rate (numeric values outside
  the reference's ``[min, max]``) and the number of categories the reference never had.
- **prediction** mix: class shares (and the reference's label shares when it has the
  target), quantiles of the score (the positive class's probability) or of a regression
  prediction.
- **performance** where labels arrived (``performance.live_metrics``), and an estimate where
  they did not (``performance.estimate``, confidence-based).

Everything is a plain JSON-able dict once ``to_dict()`` is called; non-finite numbers are
written ``"inf"``/``"-inf"``/``"nan"`` as in the drift report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.data.drift_report import DriftReport

#: The score quantiles reported for each window.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def enc(value: float | None) -> float | str | None:
    """A JSON-safe number: finite floats as they are, the rest as text (None stays None)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else str(value)


@dataclass(frozen=True)
class WindowStats:
    """Everything measured on one window; ``to_dict()`` is what the store keeps."""

    rows: int
    drift: DriftReport | None
    quality: dict[str, dict[str, Any]]
    prediction: dict[str, Any]
    performance: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        return [] if self.drift is None else self.drift.drifted

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "drift": None if self.drift is None else self.drift.to_dict(),
            "quality": self.quality,
            "prediction": self.prediction,
            "performance": self.performance,
        }


def window_statistics(
    reference: Any,
    current: Any,
    *,
    features: Sequence[str],
    prediction: str | None = "prediction",
    score: str | None = None,
    label: str | None = None,
    target: str | None = None,
    classes: Sequence[Any] | None = None,
    probabilities: Mapping[Any, str] | None = None,
    calibrate: Callable[[Any], Any] | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> WindowStats:
    """Compare one window of logged predictions with the reference.

    Args:
        reference: the reference table (pandas/polars/pyarrow), with at least ``features``.
        current: the window's predictions as a table: the features, and the ``prediction``,
            ``score``, ``label`` columns when given.
        features: the model's input columns to compare.
        prediction: the predicted class or value column (None: no prediction mix).
        score: a binary classifier's probability of the positive class.
        label: the ground-truth column of ``current`` (None where no label arrived).
        target: the label column of ``reference``, for the reference class shares.
        classes: the model's classes in order (the last is the positive class of a binary
            classifier); None for a regressor.
        probabilities: ``{class: column}`` of the class probabilities in ``current``.
        calibrate: maps raw probabilities to calibrated ones before the estimate.
        thresholds: drift thresholds, as ``loopml.data.drift.drift`` takes them.

    Raises:
        InvalidParameterError: a feature or column missing from a table.
    """
    import numpy as np

    from loopml.data.drift import drift
    from loopml.data.tables import as_arrow
    from loopml.monitoring import performance

    ref = as_arrow(reference, what="Monitor reference", mixed_as_text=True)
    cur = as_arrow(current, what="Monitor window", mixed_as_text=True)
    _require(ref, features, "the reference data")
    _require(cur, features, "the logged predictions")
    extra = [c for c in (prediction, score, label) if c is not None]
    missing = [c for c in [*extra, *(probabilities or {}).values()] if c not in cur.column_names]
    if missing:
        raise InvalidParameterError(
            f"Columns {missing} are not in the window's table (its columns: "
            f"{cur.column_names[:30]}): pass prediction=, score=, label= and probabilities= "
            "naming columns it has, or None for what the window lacks."
        )
    rows = cur.num_rows
    report = None
    if rows and ref.num_rows and features:
        report = drift(
            ref.select(list(features)), cur.select(list(features)), thresholds=thresholds
        )
    quality = _quality(ref, cur, features, report)
    mix = _prediction_mix(ref, cur, prediction, score, target, classes)
    result: dict[str, Any] = {}
    if label is not None and prediction is not None and rows:
        s = None if score is None else cur.column(score).to_numpy(zero_copy_only=False)
        if classes is None:
            y, pred = (_floats(cur.column(c)) for c in (label, prediction))
        else:
            y, pred = as_text(cur.column(label)), as_text(cur.column(prediction))
        result["live"] = performance.live_metrics(y, pred, s, classes)
    if classes is not None and rows and (score is not None or probabilities):
        if score is not None and len(classes) == 2:
            p = np.asarray(cur.column(score).to_numpy(zero_copy_only=False), dtype=np.float64)
            positive = (
                None if prediction is None else as_text(cur.column(prediction)) == str(classes[-1])
            )
            result["estimated"] = performance.estimate_binary(p, positive, classes, calibrate)
        elif probabilities:
            matrix = np.column_stack(
                [
                    np.asarray(cur.column(col).to_numpy(zero_copy_only=False), dtype=np.float64)
                    for col in probabilities.values()
                ]
            )
            result["estimated"] = performance.estimate_multiclass(matrix)
    return WindowStats(rows=rows, drift=report, quality=quality, prediction=mix, performance=result)


def _require(table: pa.Table, columns: Sequence[str], where: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InvalidParameterError(
            f"Columns {missing} are not in {where} (its columns: {table.column_names[:30]}). "
            "The monitor compares the model's input columns: log predictions with the same "
            "columns as the reference, or pick a reference with the model's inputs."
        )


def _quality(
    ref: pa.Table, cur: pa.Table, features: Sequence[str], report: DriftReport | None
) -> dict[str, dict[str, Any]]:
    """Missing rate, out-of-range rate and new categories of each feature in the window."""
    from loopml.data.drift_columns import kind_of

    columns = {} if report is None else {c.column: c for c in report.columns}
    out: dict[str, dict[str, Any]] = {}
    for name in features:
        col = cur.column(name)
        n = len(col)
        entry: dict[str, Any] = {"missing": enc(col.null_count / n) if n else None}
        if kind_of(col.type) == "numeric" and kind_of(ref.column(name).type) == "numeric":
            entry["out_of_range"] = enc(_out_of_range(ref.column(name), col))
        c = columns.get(name)
        if c is not None:
            entry["missing"] = enc(c.missing_rate_current)
            entry["missing_reference"] = enc(c.missing_rate_reference)
            entry["new_categories"] = c.new_categories_total
            entry["new_examples"] = [v for v, _ in c.new_categories[:5]]
        out[name] = entry
    return out


def _out_of_range(ref: pa.ChunkedArray, cur: pa.ChunkedArray) -> float | None:
    """The share of the window's present values outside the reference's ``[min, max]``."""
    import numpy as np
    import pyarrow as pa

    def numbers(col: pa.ChunkedArray) -> Any:
        if pa.types.is_temporal(col.type):
            col = col.cast(pa.int64())
        values = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        return values[~np.isnan(values)]

    r, c = numbers(ref), numbers(cur)
    if not len(r) or not len(c):
        return None
    low, high = float(r.min()), float(r.max())
    return float(np.count_nonzero((c < low) | (c > high)) / len(c))


def _prediction_mix(
    ref: pa.Table,
    cur: pa.Table,
    prediction: str | None,
    score: str | None,
    target: str | None,
    classes: Sequence[Any] | None,
) -> dict[str, Any]:
    import numpy as np

    mix: dict[str, Any] = {}
    if prediction is not None and cur.num_rows:
        if classes is not None:
            mix["shares"] = _shares(cur.column(prediction), classes)
            if target is not None and target in ref.column_names:
                mix["reference_shares"] = _shares(ref.column(target), classes)
        else:
            score = score or prediction
    if score is not None and cur.num_rows:
        x = np.asarray(cur.column(score).to_numpy(zero_copy_only=False), dtype=np.float64)
        x = x[~np.isnan(x)]
        if len(x):
            q = np.quantile(x, QUANTILES)
            mix["quantiles"] = {str(k): enc(v) for k, v in zip(QUANTILES, q, strict=True)}
            mix["mean"] = enc(float(x.mean()))
    return mix


def as_text(col: pa.ChunkedArray) -> Any:
    """A column's values as numpy text (None for missing), so ``1`` and ``"1"`` compare equal."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(col.type):  # 1.0 → "1", as the class a JSON label 1 names
        whole = pc.equal(col, pc.floor(col))
        if pc.all(pc.or_kleene(whole, pc.is_null(col))).as_py():
            col = col.cast(pa.int64())
    return np.asarray(col.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)


def _floats(col: pa.ChunkedArray) -> Any:
    import numpy as np
    import pyarrow as pa

    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        col = col.cast(pa.float64(), safe=False)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _shares(col: pa.ChunkedArray, classes: Sequence[Any]) -> dict[str, float]:
    """Each class's share of the column's present values (classes it has but the model did
    not declare too; a missing value is no class)."""
    import pyarrow as pa

    counts = col.cast(pa.string()).value_counts().to_pylist() if len(col) else []
    found = {str(c["values"]): int(c["counts"]) for c in counts if c["values"] is not None}
    n = max(len(col) - col.null_count, 1)
    shares = {str(c): found.pop(str(c), 0) / n for c in classes}
    for other, k in sorted(found.items(), key=lambda kv: -kv[1])[:10]:
        shares[other] = k / n
    return shares
