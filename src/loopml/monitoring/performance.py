"""Model performance in a window: measured where labels arrived, estimated where not.

**Live metrics** compare the logged prediction with the label sent to ``/feedback``
(classifier: accuracy, F1 of the positive class, ROC AUC from the score; regressor: RMSE,
MAE, R²). Labels and predictions are compared as text, so ``1`` and ``"1"`` agree.

**Estimated metrics** follow the idea of NannyML's confidence-based performance estimation
(CBPE): if the model's probabilities are calibrated, a prediction with probability ``p`` of
the positive class is right with probability ``p`` (or ``1 - p``), so the expected confusion
matrix, and from it the expected accuracy, F1 and ROC AUC, follow from the scores alone. The
uncertainty is that of the metric a labelled window would show: labels are drawn from the
probabilities (Monte-Carlo, ``DRAWS`` times, on at most ``SAMPLE`` rows scaled back to the
window's size), and the 2.5 % and 97.5 % points of those draws bound the estimate. When
the reference data has labels, the monitor calibrates the probabilities on it first
(isotonic regression of the label on the score); otherwise the estimate assumes the
model's probabilities are calibrated, and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from loopml.errors import InvalidParameterError
from loopml.monitoring.stats import enc

DRAWS = 200
SAMPLE = 20_000


def live_metrics(labels: Any, predictions: Any, scores: Any, classes: Any) -> dict[str, Any]:
    """Metrics over the rows that have a label; ``{"labels": n, "metrics": {...}}``.

    ``labels`` and ``predictions`` are numpy arrays: text (None where no label arrived) for
    a classifier, floats (NaN where none arrived) for a regressor (``classes`` None).
    """
    import numpy as np

    if classes is None:
        y = np.asarray(labels, dtype=np.float64)
        keep = ~np.isnan(y)
    else:
        keep = np.asarray([v is not None and v == v for v in labels], dtype=bool)  # NaN: none
    out: dict[str, Any] = {"labels": int(keep.sum()), "metrics": {}}
    if not keep.any():
        return out
    if classes is None:
        y = y[keep]
        err = np.asarray(predictions, dtype=np.float64)[keep] - y
        metrics = {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
        total = float(np.sum((y - y.mean()) ** 2))
        metrics["r2"] = 1.0 - float(np.sum(err**2)) / total if total > 0 else float("nan")
    else:
        # As text, so that a label "1" and a prediction 1 agree whatever the caller passed.
        y_text = np.asarray([str(v) for v in np.asarray(labels, dtype=object)[keep]], dtype=object)
        p_text = np.asarray(
            [None if v is None else str(v) for v in np.asarray(predictions, dtype=object)[keep]],
            dtype=object,
        )
        metrics = {"accuracy": float(np.mean(y_text == p_text))}
        if len(classes) == 2:
            positive = str(classes[-1])
            truth = y_text == positive
            metrics["f1"] = _f1(truth, p_text == positive)
            if scores is not None:
                s = np.asarray(scores, dtype=np.float64)[keep]
                metrics["roc_auc"] = roc_auc(truth.astype(np.float64), s)
    out["metrics"] = {k: enc(v) for k, v in metrics.items()}
    return out


def _f1(truth: Any, predicted: Any) -> float:
    import numpy as np

    tp = float(np.count_nonzero(truth & predicted))
    denominator = float(np.count_nonzero(truth) + np.count_nonzero(predicted))
    return 2 * tp / denominator if denominator else float("nan")


def roc_auc(weights_positive: Any, scores: Any) -> float:
    """ROC AUC with soft labels: each row counts ``w`` as a positive and ``1 - w`` as a
    negative (``w`` in {0, 1} gives the usual AUC, ties counted half)."""
    import numpy as np

    w = np.asarray(weights_positive, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    ok = ~np.isnan(s)
    w, s = w[ok], s[ok]
    pos, neg = float(w.sum()), float((1 - w).sum())
    if pos <= 0 or neg <= 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    s, w = s[order], w[order]
    # Group ties: each group's positives beat every negative of lower groups, tie half.
    _, start = np.unique(s, return_index=True)
    group_pos = np.add.reduceat(w, start)
    group_neg = np.add.reduceat(1 - w, start)
    below = np.concatenate(([0.0], np.cumsum(group_neg)[:-1]))
    return float(np.sum(group_pos * (below + group_neg / 2)) / (pos * neg))


def estimate_binary(
    p: Any,
    predictions: Any,
    classes: Sequence[Any],
    calibrate: Callable[[Any], Any] | None = None,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Expected accuracy, F1 and ROC AUC from the positive class's probabilities ``p``.

    ``predictions`` says, per row, whether the positive class was predicted (booleans);
    None reads it as ``p >= 0.5``.
    """
    import numpy as np

    raw = np.asarray(p, dtype=np.float64)
    ok = ~np.isnan(raw)
    raw = raw[ok]
    if not len(raw):
        return {}
    q = np.clip(np.asarray(calibrate(raw), dtype=np.float64) if calibrate else raw, 0.0, 1.0)
    predicted = raw >= 0.5 if predictions is None else np.asarray(predictions, dtype=bool)[ok]
    point = _expected(q, predicted, raw)
    rng = np.random.default_rng(seed)
    n = len(q)
    idx = np.sort(rng.choice(n, SAMPLE, replace=False)) if n > SAMPLE else np.arange(n)
    # Sort the sample by score once; every draw then only sums per tied group.
    order = np.argsort(raw[idx], kind="mergesort")
    qs, ps, rs = q[idx][order], predicted[idx][order], raw[idx][order]
    _, start = np.unique(rs, return_index=True)
    truth = rng.random((DRAWS, len(qs))) < qs  # one row per draw of the labels
    tp = np.count_nonzero(truth & ps, axis=1)
    positives = np.count_nonzero(truth, axis=1)
    draws = {
        "accuracy": np.mean(truth == ps, axis=1),
        "f1": np.where(
            positives + ps.sum() > 0, 2 * tp / np.maximum(positives + ps.sum(), 1), np.nan
        ),
        "roc_auc": _auc_rows(truth.astype(np.float64), start),
    }
    scale = np.sqrt(len(qs) / n)  # a draw on a sample varies sqrt(n / m) times more
    out: dict[str, Any] = {"calibrated": calibrate is not None, "rows": n, "metrics": {}}
    for name, value in point.items():
        spread = draws[name][~np.isnan(draws[name])]
        if not len(spread) or np.isnan(value):
            out["metrics"][name] = {"value": enc(value), "low": None, "high": None}
            continue
        low, high = np.quantile(spread, [0.025, 0.975])
        centre = float(spread.mean())
        # Accuracy, F1 and ROC AUC live in [0, 1]: so do their bounds.
        out["metrics"][name] = {
            "value": enc(value),
            "low": enc(max(value - (centre - low) * scale, 0.0)),
            "high": enc(min(value + (high - centre) * scale, 1.0)),
        }
    return out


def _auc_rows(truth: Any, start: Any) -> Any:
    """ROC AUC of each row of 0/1 labels over scores already sorted, tied groups at ``start``."""
    import numpy as np

    group_pos = np.add.reduceat(truth, start, axis=1)
    group_neg = np.add.reduceat(1 - truth, start, axis=1)
    below = np.cumsum(group_neg, axis=1) - group_neg
    pos, neg = group_pos.sum(axis=1), group_neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.sum(group_pos * (below + group_neg / 2), axis=1) / (pos * neg)
    return np.where((pos > 0) & (neg > 0), auc, np.nan)


def _expected(q: Any, predicted: Any, raw: Any) -> dict[str, float]:
    import numpy as np

    tp = float(np.sum(q[predicted]))
    fp = float(np.sum(1 - q[predicted]))
    fn = float(np.sum(q[~predicted]))
    tn = float(np.sum(1 - q[~predicted]))
    n = tp + fp + fn + tn
    denominator = 2 * tp + fp + fn
    return {
        "accuracy": (tp + tn) / n,
        "f1": 2 * tp / denominator if denominator else float("nan"),
        "roc_auc": roc_auc(q, raw),
    }


def estimate_multiclass(matrix: Any) -> dict[str, Any]:
    """Expected accuracy of a multi-class model: the mean probability of the predicted class."""
    import numpy as np

    m = np.asarray(matrix, dtype=np.float64)
    m = m[~np.isnan(m).any(axis=1)]
    if not len(m):
        return {}
    top = m.max(axis=1)
    value = float(top.mean())
    sd = float(np.sqrt(np.sum(top * (1 - top))) / len(top))
    return {
        "calibrated": False,
        "rows": len(top),
        "metrics": {
            "accuracy": {
                "value": enc(value),
                "low": enc(max(value - 1.96 * sd, 0.0)),
                "high": enc(min(value + 1.96 * sd, 1.0)),
            }
        },
    }


def isotonic_calibration(scores: Any, labels: Any) -> Callable[[Any], Any]:
    """A monotone map from raw scores to observed positive rates (pool adjacent violators).

    Hand-written because scikit-learn is an optional extra here and the map is 20 lines;
    it fits what ``sklearn.isotonic.IsotonicRegression(out_of_bounds="clip")`` fits, read
    as a step function (no interpolation between the fitted points).
    """
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    ok = ~(np.isnan(s) | np.isnan(y))
    s, y = s[ok], y[ok]
    if not len(s):
        raise InvalidParameterError(
            "Isotonic calibration: got no rows with both a score and a label; expected at "
            "least one. Calibrate on labelled reference data."
        )
    # Tied scores are one point (their mean label), as in scikit-learn: otherwise the
    # labels' order among the ties would decide the fit.
    points, group, count = np.unique(s, return_inverse=True, return_counts=True)
    sums = np.bincount(group, weights=y)
    values: list[float] = []
    weights: list[float] = []
    blocks: list[float] = []
    for x, total, w in zip(points, sums, count, strict=True):
        values.append(float(total) / float(w))
        weights.append(float(w))
        blocks.append(float(x))
        while len(values) > 1 and values[-2] > values[-1]:
            w2 = weights[-2] + weights[-1]
            v = (values[-2] * weights[-2] + values[-1] * weights[-1]) / w2
            values[-2:] = [v]
            weights[-2:] = [w2]
            blocks[-2:] = [blocks[-1]]
    edges = np.asarray(blocks)
    fitted = np.asarray(values)

    def apply(raw: Any) -> Any:
        x = np.asarray(raw, dtype=np.float64)
        index = np.clip(np.searchsorted(edges, x, side="left"), 0, len(fitted) - 1)
        return fitted[index]

    return apply
