"""Input checks shared by ``compute`` and the bootstrap: bad input fails once, clearly, up front.

Checked before any work, so a 1,000-resample bootstrap never dies halfway on a NaN: each
message names the metric or input, what was found (how many bad values, the first row)
and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from loopml.evaluation.errors import EvaluationError

if TYPE_CHECKING:
    import numpy as np

    from loopml.evaluation.metrics import Metric, Predictions

_SUM_TOLERANCE = 1e-6


def validate(
    metrics: Sequence[Metric], y_true: np.ndarray, pred: Predictions
) -> tuple[np.ndarray, Predictions]:
    import numpy as np

    if not metrics:
        raise EvaluationError("No metrics given; pass default_metrics(task) or custom metrics.")
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise EvaluationError(f"y_true: got shape {y.shape}; expected one value per row (n,).")
    n = len(y)
    arrays: dict[str, np.ndarray] = {}
    for name in ("labels", "scores", "values", "horizon"):
        value = getattr(pred, name)
        if value is not None:
            value = np.asarray(value)
            if len(value) != n:
                raise EvaluationError(
                    f"Predictions.{name}: got {len(value):,} rows; y_true has {n:,}. "
                    "Predict on exactly the suite's test rows, in their order."
                )
            _finite(f"Predictions.{name}", value)
            arrays[name] = value
    for m in metrics:
        _needs(m, arrays)
    classify = any(m.needs != "values" for m in metrics)
    if classify:
        _finite("y_true", y)
        y = _codes("y_true", y)
        if "labels" in arrays:
            arrays["labels"] = _codes("Predictions.labels", arrays["labels"])
        scores = arrays.get("scores")
        if scores is not None:
            scores = scores.astype(np.float64)
            _probabilities(scores)
            arrays["scores"] = scores
        binary = any(t.startswith("tp@") for m in metrics for t in m.terms) or (
            scores is not None and scores.ndim == 1
        )
        k = scores.shape[1] if scores is not None and scores.ndim == 2 else (2 if binary else 0)
        for name, codes in (("y_true", y), ("Predictions.labels", arrays.get("labels"))):
            if k and codes is not None and len(codes) and int(codes.max()) >= k:
                raise EvaluationError(
                    f"{name}: got class code {int(codes.max())}; expected codes 0..{k - 1}"
                    f"{' (0 = negative, 1 = positive)' if binary else ''}. "
                    "Encode the classes as 0..k-1 in the order of the score columns."
                )
    else:
        y = y.astype(np.float64)
        _finite("y_true", y)
        if "values" in arrays:
            arrays["values"] = arrays["values"].astype(np.float64)
    if any("ae_scaled" in m.terms for m in metrics):
        scale = pred.scale
        if scale is None or not np.isfinite(scale) or scale <= 0:
            raise EvaluationError(
                f"mase needs Predictions.scale > 0 (the in-sample naive MAE of the training "
                f"series); got {scale!r}. Compute it from the training series, e.g. "
                "mean(|y[t] - y[t-1]|) (or the seasonal lag)."
            )
    if "horizon" in arrays and any("w_h" in m.terms for m in metrics):
        h = arrays["horizon"]
        if len(h) and (h.min() < 1 or not np.array_equal(h, np.round(h))):
            raise EvaluationError(
                f"Predictions.horizon: got {h.min()!r}; expected whole steps ahead 1..H."
            )
        arrays["horizon"] = h.astype(np.int64)
    return y, replace(
        pred,
        labels=arrays.get("labels"),
        scores=arrays.get("scores"),
        values=arrays.get("values"),
        horizon=arrays.get("horizon"),
    )


def _needs(metric: Metric, arrays: dict[str, np.ndarray]) -> None:
    if metric.needs == "scores" and "scores" not in arrays:
        raise EvaluationError(
            f"{metric.name} needs predicted probabilities; the model has no predict_proba: "
            "Predictions.scores is None. Use a model that predicts probabilities (or "
            "calibrate it, e.g. CalibratedClassifierCV), or drop this metric from the suite."
        )
    if metric.needs == "labels" and "labels" not in arrays:
        thresholded = any(t.startswith("tp@") for t in metric.terms) and "scores" in arrays
        if not thresholded:
            raise EvaluationError(
                f"{metric.name} needs predicted class labels: Predictions.labels is None. "
                "Pass the model's predict() output as labels."
            )
    if metric.needs == "values" and "values" not in arrays:
        raise EvaluationError(
            f"{metric.name} needs predicted values: Predictions.values is None. "
            "Pass the model's predict() output as values."
        )
    if any(t in ("se_h", "w_h") for t in metric.terms) and "horizon" not in arrays:
        raise EvaluationError(
            f"{metric.name} needs the horizon of each row: Predictions.horizon is None. "
            "Pass the steps ahead (1..H) of each forecast row."
        )


def _finite(name: str, values: np.ndarray) -> None:
    import numpy as np

    if values.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(values), -1).any(axis=1))
        raise EvaluationError(
            f"{name}: {len(rows):,} row{'s' if len(rows) != 1 else ''} with NaN or inf "
            f"(first: row {int(rows[0])}). Fix the model's output or drop those rows from "
            "the test set before evaluating."
        )


def _codes(name: str, values: np.ndarray) -> np.ndarray:
    import numpy as np

    if values.dtype.kind == "b":
        return values.astype(np.int64)
    if values.dtype.kind not in "iuf" or (
        values.dtype.kind == "f" and not np.array_equal(values, np.round(values))
    ):
        raise EvaluationError(
            f"{name}: got values of dtype {values.dtype}; expected integer class codes 0..k-1. "
            "Encode the classes first (e.g. sklearn.preprocessing.LabelEncoder)."
        )
    if len(values) and values.min() < 0:
        raise EvaluationError(f"{name}: got class code {values.min()!r}; expected codes 0..k-1.")
    return values.astype(np.int64)


def _probabilities(scores: np.ndarray) -> None:
    import numpy as np

    if scores.ndim not in (1, 2):
        raise EvaluationError(
            f"Predictions.scores: got shape {scores.shape}; expected (n,) for binary or (n, k)."
        )
    outside = (scores < 0) | (scores > 1)
    if outside.any():
        rows = np.flatnonzero(outside.reshape(len(scores), -1).any(axis=1))
        raise EvaluationError(
            f"Predictions.scores: {len(rows):,} rows outside [0, 1] (first: row {int(rows[0])}, "
            f"{scores[rows[0]]!r}). Scores must be probabilities (predict_proba), not "
            "decision_function margins; pass expit(margin) or calibrate the model."
        )
    if scores.ndim == 2:
        off = np.abs(scores.sum(axis=1) - 1) > _SUM_TOLERANCE
        if off.any():
            rows = np.flatnonzero(off)
            raise EvaluationError(
                f"Predictions.scores: {len(rows):,} rows do not sum to 1 (first: row "
                f"{int(rows[0])}, sum {float(scores[rows[0]].sum())!r}). Pass predict_proba "
                "output, one column per class, or normalise each row."
            )
