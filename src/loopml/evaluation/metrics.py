"""The metrics of an evaluation suite: defaults per task, custom ones, and their values.

Every built-in metric is a ratio of *weighted sums over the rows* (see ``_weighted.py``):
that is what lets the bootstrap evaluate 1,000 resamples as 1,000 weight vectors in one
pass instead of 1,000 calls of scikit-learn. :func:`compute` is the same code with every
weight 1, and equals scikit-learn's function for each metric to 1e-9 (the tests check
it, ties included). A custom metric is a plain ``fn(y_true, y_pred) -> float``; it is
called on the resampled rows, so it is exact but slower.

Undefined values are NaN, never an exception: ROC AUC or average precision with one class
present, F1 with no positive predicted or true, a per-horizon RMSE with no row at that
horizon. The bootstrap excludes them from its percentiles and counts them. MAPE follows
scikit-learn: ``|y|`` is floored at machine epsilon, so a zero target gives a huge finite
value (prefer ``smape`` for series that touch zero). Unusable *input* raises
:class:`~loopml.evaluation.errors.EvaluationError` (see :func:`check`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from loopml.evaluation.errors import EvaluationError

if TYPE_CHECKING:
    import numpy as np

Task = Literal["binary", "multiclass", "regression", "forecasting"]
Need = Literal["scores", "labels", "values"]
Sums = Mapping[str, "np.ndarray"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression", "forecasting")


@dataclass(frozen=True)
class Predictions:
    """What a model produced for the test rows, in one shape per task."""

    labels: np.ndarray | None = None  # binary/multiclass: predicted class codes 0..k-1 (int)
    scores: np.ndarray | None = None  # binary: P(class 1), shape (n,); multiclass: (n, k)
    values: np.ndarray | None = None  # regression / forecasting: predicted values, shape (n,)
    horizon: np.ndarray | None = None  # forecasting: steps ahead of each row (1..H), shape (n,)
    scale: float | None = (
        None  # forecasting: MASE scale (in-sample naive MAE of the training series)
    )


@dataclass(frozen=True)
class Metric:
    """One metric: its name, direction, what prediction it reads, and how it is computed.

    A built-in metric lists the weighted sums it needs (``terms``) and ``finish`` turns
    those sums, one value per resample, into the metric. A custom metric has ``fn``
    instead, called on the (resampled) rows.
    """

    name: str
    higher_is_better: bool
    needs: Need
    terms: tuple[str, ...] = ()
    finish: Callable[[Sums], np.ndarray] | None = field(default=None, repr=False, compare=False)
    fn: Callable[[np.ndarray, np.ndarray], float] | None = field(
        default=None, repr=False, compare=False
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan))


def _builtin(
    name: str,
    higher: bool,
    needs: Need,
    terms: tuple[str, ...],
    finish: Callable[[Sums], np.ndarray],
) -> Metric:
    return Metric(name, higher, needs, terms, finish)


def _binary(threshold: float) -> list[Metric]:
    tp, pp = f"tp@{threshold:g}", f"pp@{threshold:g}"

    def roc_auc(s: Sums) -> np.ndarray:
        return _ratio(s["auc2"], 2 * s["pos"] * (s["w"] - s["pos"]))

    def f1(s: Sums) -> np.ndarray:  # 2TP / (2TP + FP + FN) = 2TP / (predicted + actual)
        return _ratio(2 * s[tp], s[pp] + s["pos"])

    def accuracy(s: Sums) -> np.ndarray:  # (TP + TN) / W, TN = W - pos - (pp - TP)
        return _ratio(2 * s[tp] + s["w"] - s["pos"] - s[pp], s["w"])

    return [
        _builtin("roc_auc", True, "scores", ("auc2", "pos", "w"), roc_auc),
        _builtin("pr_auc", True, "scores", ("ap", "pos"), lambda s: _ratio(s["ap"], s["pos"])),
        _builtin(
            "log_loss", False, "scores", ("logloss", "w"), lambda s: _ratio(s["logloss"], s["w"])
        ),
        _builtin("brier", False, "scores", ("brier", "w"), lambda s: _ratio(s["brier"], s["w"])),
        _builtin("f1", True, "labels", (tp, pp, "pos"), f1),
        _builtin("accuracy", True, "labels", (tp, pp, "pos", "w"), accuracy),
    ]


def _macro_f1(s: Sums) -> np.ndarray:
    import numpy as np

    # as scikit-learn: average over the classes present in y_true or y_pred (of the resample)
    present = (s["class_pp"] + s["class_yy"]) > 0
    f1 = _ratio(2 * s["class_tp"], s["class_pp"] + s["class_yy"])
    with np.errstate(invalid="ignore"):
        return _ratio(np.where(present, f1, 0.0).sum(axis=1), present.sum(axis=1).astype(float))


def _r2(s: Sums) -> np.ndarray:
    import numpy as np

    sst = s["yc2"] - _ratio(s["yc"] ** 2, s["w"])
    r2 = 1 - _ratio(s["se"], sst)
    # scikit-learn's force_finite: constant y gives 1.0 if predicted perfectly, else 0.0
    return np.asarray(np.where(sst > 0, r2, np.where(s["se"] == 0, 1.0, 0.0)))


def _rmse(s: Sums) -> np.ndarray:
    import numpy as np

    return np.asarray(np.sqrt(_ratio(s["se"], s["w"])))


def _rmse_at(h: int) -> Callable[[Sums], np.ndarray]:
    def finish(s: Sums) -> np.ndarray:
        import numpy as np

        return np.asarray(np.sqrt(_ratio(s["se_h"][:, h - 1], s["w_h"][:, h - 1])))

    return finish


def default_metrics(
    task: Task, *, threshold: float = 0.5, horizons: int | None = None
) -> list[Metric]:
    """The metrics a suite reports by default for ``task``.

    - binary: roc_auc, pr_auc (average precision), log_loss, brier, f1, accuracy. F1 and
      accuracy use the labels ``score >= threshold`` when scores are given, else the
      model's own labels;
    - multiclass: accuracy, macro_f1, log_loss;
    - regression: rmse, mae, r2, mape;
    - forecasting: mase, smape (``2|e| / (|y| + |ŷ|)``, a fraction in [0, 2]; 0 when both
      are 0), rmse, and ``rmse_h1`` … ``rmse_hH`` when ``horizons`` is given.

    Raises:
        EvaluationError: an unknown task, or a threshold outside (0, 1).
    """
    if task == "binary":
        if not 0 < threshold < 1:
            raise EvaluationError(
                f"threshold: got {threshold!r}; expected a probability in (0, 1), e.g. 0.5."
            )
        return _binary(threshold)
    if task == "multiclass":
        return [
            _builtin(
                "accuracy", True, "labels", ("correct", "w"), lambda s: _ratio(s["correct"], s["w"])
            ),
            _builtin("macro_f1", True, "labels", ("class_tp", "class_pp", "class_yy"), _macro_f1),
            _builtin(
                "log_loss",
                False,
                "scores",
                ("logloss", "w"),
                lambda s: _ratio(s["logloss"], s["w"]),
            ),
        ]
    if task == "regression":
        return [
            _builtin("rmse", False, "values", ("se", "w"), _rmse),
            _builtin("mae", False, "values", ("ae", "w"), lambda s: _ratio(s["ae"], s["w"])),
            _builtin("r2", True, "values", ("se", "yc", "yc2", "w"), _r2),
            _builtin("mape", False, "values", ("ape", "w"), lambda s: _ratio(s["ape"], s["w"])),
        ]
    if task == "forecasting":
        found = [
            _builtin(
                "mase",
                False,
                "values",
                ("ae_scaled", "w"),
                lambda s: _ratio(s["ae_scaled"], s["w"]),
            ),
            _builtin("smape", False, "values", ("sape", "w"), lambda s: _ratio(s["sape"], s["w"])),
            _builtin("rmse", False, "values", ("se", "w"), _rmse),
        ]
        for h in range(1, (horizons or 0) + 1):
            found.append(_builtin(f"rmse_h{h}", False, "values", ("se_h", "w_h"), _rmse_at(h)))
        return found
    raise EvaluationError(f"Unknown task {task!r}; expected one of {list(TASKS)}.")


def custom_metric(
    fn: Callable[[np.ndarray, np.ndarray], float],
    *,
    name: str | None = None,
    higher_is_better: bool = True,
    needs: Need = "values",
) -> Metric:
    """A metric from a plain function ``fn(y_true, y_pred) -> float``.

    ``y_pred`` is the model's scores, labels or values, as ``needs`` says. Under the
    bootstrap ``fn`` is called once per resample on the resampled rows.

    Example:
        >>> import numpy as np
        >>> m = custom_metric(lambda y, p: float(np.max(np.abs(y - p))), name="max_error",
        ...                   higher_is_better=False)
        >>> compute([m], np.array([1.0, 2.0]), Predictions(values=np.array([1.5, 2.0])))
        {'max_error': 0.5}
    """
    if needs not in ("scores", "labels", "values"):
        raise EvaluationError(
            f"custom metric needs={needs!r}; expected 'scores', 'labels' or 'values'."
        )
    label = name or str(getattr(fn, "__name__", "custom"))
    return Metric(label, higher_is_better, needs, fn=fn)


def compute(metrics: Sequence[Metric], y_true: np.ndarray, pred: Predictions) -> dict[str, float]:
    """The point estimate of each metric on all rows (NaN where undefined, see the module doc).

    Raises:
        EvaluationError: unusable inputs (see :func:`check`), or a custom metric that raised.
    """
    import numpy as np

    from loopml.evaluation._weighted import Plan

    y, pred = check(metrics, y_true, pred)
    builtin = [m for m in metrics if m.fn is None]
    result: dict[str, float] = {}
    if builtin:
        sums = Plan(builtin, y, pred).sums(np.ones((1, len(y)), dtype=np.uint8))
        for m in builtin:
            assert m.finish is not None
            result[m.name] = float(m.finish(sums)[0])
    for m in metrics:
        if m.fn is not None:
            result[m.name] = call_custom(m, y, _array(pred, m.needs))
    return {m.name: result[m.name] for m in metrics}


def call_custom(metric: Metric, y: np.ndarray, pred: np.ndarray) -> float:
    """``metric.fn(y, pred)`` as a float; its exceptions become an EvaluationError."""
    assert metric.fn is not None
    try:
        return float(metric.fn(y, pred))
    except Exception as exc:
        raise EvaluationError(
            f"custom metric {metric.name!r} raised {type(exc).__name__}: {exc}. "
            "Fix the function, or return float('nan') when the metric is undefined."
        ) from exc


def _array(pred: Predictions, needs: Need) -> np.ndarray:
    value = {"scores": pred.scores, "labels": pred.labels, "values": pred.values}[needs]
    assert value is not None
    return value


def check(
    metrics: Sequence[Metric], y_true: np.ndarray, pred: Predictions
) -> tuple[np.ndarray, Predictions]:
    """Validate inputs once; return ``y_true`` and ``pred`` as clean numpy arrays.

    Raises:
        EvaluationError: a prediction a metric needs is missing (e.g. scores from a model
            without ``predict_proba``), a length that differs from ``y_true``, NaN or inf
            (with how many and the first row), probabilities outside [0, 1], multiclass rows
            not summing to 1, binary targets other than 0/1, or MASE without a scale.
    """
    from loopml.evaluation._checks import validate

    return validate(metrics, y_true, pred)
