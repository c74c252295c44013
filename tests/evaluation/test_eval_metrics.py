# ruff: noqa: B023  (each reference lambda is called within its own loop iteration)
"""compute() equals scikit-learn's metric functions, and the weighted kernels equal them on repeated rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopml.evaluation._weighted import Plan
from loopml.evaluation.errors import EvaluationError
from loopml.evaluation.metrics import Predictions, compute, custom_metric, default_metrics


def _binary_reference(y: np.ndarray, s: np.ndarray, t: float = 0.5) -> dict[str, float]:
    return {
        "roc_auc": skm.roc_auc_score(y, s),
        "pr_auc": skm.average_precision_score(y, s),
        "log_loss": skm.log_loss(y, y_proba=s),
        "brier": skm.brier_score_loss(y, s),
        "f1": skm.f1_score(y, s >= t),
        "accuracy": skm.accuracy_score(y, s >= t),
    }


def _close(got: dict[str, float], want: dict[str, float]) -> None:
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-9, rel=1e-9), name


def test_binary_equals_sklearn_on_breast_cancer() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x[::2], y[::2])
    s = model.predict_proba(x[1::2])[:, 1]
    _close(
        compute(default_metrics("binary"), y[1::2], Predictions(scores=s)),
        _binary_reference(y[1::2], s),
    )


@pytest.mark.parametrize("loader", [load_wine, load_iris])
def test_multiclass_equals_sklearn(loader: object) -> None:
    x, y = loader(return_X_y=True)  # type: ignore[operator]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(x[::2], y[::2])
    proba, labels = model.predict_proba(x[1::2]), model.predict(x[1::2])
    got = compute(default_metrics("multiclass"), y[1::2], Predictions(labels=labels, scores=proba))
    _close(got, {
        "accuracy": skm.accuracy_score(y[1::2], labels),
        "macro_f1": skm.f1_score(y[1::2], labels, average="macro"),
        "log_loss": skm.log_loss(y[1::2], y_proba=proba, labels=[0, 1, 2]),
    })  # fmt: skip


def _regression_reference(y: np.ndarray, v: np.ndarray) -> dict[str, float]:
    return {
        "rmse": skm.root_mean_squared_error(y, v),
        "mae": skm.mean_absolute_error(y, v),
        "r2": skm.r2_score(y, v),
        "mape": skm.mean_absolute_percentage_error(y, v),
    }


def test_regression_equals_sklearn_on_diabetes() -> None:
    x, y = load_diabetes(return_X_y=True)
    v = LinearRegression().fit(x[::2], y[::2]).predict(x[1::2])
    _close(
        compute(default_metrics("regression"), y[1::2], Predictions(values=v)),
        _regression_reference(y[1::2], v),
    )


@pytest.mark.parametrize("case", ["all_tied", "heavy_ties", "two_decimals", "huge_n_small"])
def test_binary_adversarial_scores(case: str) -> None:
    rng = np.random.default_rng(7)
    n = {"huge_n_small": 300_000}.get(case, 500)
    y = (rng.random(n) < 0.3).astype(int)
    s = {
        "all_tied": np.full(n, 0.5),
        "heavy_ties": rng.choice([0.1, 0.4, 0.5, 0.9], n),
        "two_decimals": np.round(rng.random(n), 2),
        "huge_n_small": rng.random(n) * 1e-6 + 0.5 * y * 1e-6,
    }[case]
    _close(compute(default_metrics("binary"), y, Predictions(scores=s)), _binary_reference(y, s))


def test_single_class_gives_nan_for_ranking_metrics() -> None:
    got = compute(
        default_metrics("binary"), np.zeros(10, int), Predictions(scores=np.linspace(0, 0.4, 10))
    )
    assert np.isnan(got["roc_auc"]) and np.isnan(got["pr_auc"]) and np.isnan(got["f1"])
    assert got["accuracy"] == 1.0


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_weighted_kernels_equal_sklearn_on_repeated_rows(task: str) -> None:
    """The check that the vectorised bootstrap is right: weights == repeating rows."""
    rng = np.random.default_rng(3)
    n = 400
    metrics = default_metrics(task)
    for trial in range(3):
        if task == "binary":
            y = (rng.random(n) < 0.4).astype(int)
            s = np.round(rng.random(n), 1 + trial)  # ties of every size
            pred, ref = Predictions(scores=s), lambda i: _binary_reference(y[i], s[i])
        elif task == "multiclass":
            y = rng.integers(0, 3, n)
            p = rng.dirichlet([1, 1, 1], n)
            pred = Predictions(labels=p.argmax(1), scores=p)
            ref = lambda i: {  # noqa: E731
                "accuracy": skm.accuracy_score(y[i], p[i].argmax(1)),
                "macro_f1": skm.f1_score(y[i], p[i].argmax(1), average="macro"),
                "log_loss": skm.log_loss(y[i], y_proba=p[i], labels=[0, 1, 2]),
            }
        else:
            y = rng.normal(10, 3, n)
            v = y + rng.normal(0, 1, n)
            pred, ref = Predictions(values=v), lambda i: _regression_reference(y[i], v[i])
        plan = Plan(metrics, y, pred)
        counts = rng.integers(0, 4, (5, n)).astype(np.uint8)
        sums = plan.sums(counts)
        order = np.arange(n) if plan.order is None else plan.order
        for b in range(5):
            rows = np.repeat(order, counts[b])
            want = ref(rows)
            got = {m.name: float(m.finish(sums)[b]) for m in metrics if m.finish}
            _close(got, want)


def test_forecasting_by_hand() -> None:
    y = np.array([10.0, 12.0, 0.0, 8.0])
    v = np.array([11.0, 12.0, 0.0, 4.0])
    h = np.array([1, 2, 1, 2])
    got = compute(
        default_metrics("forecasting", horizons=2), y, Predictions(values=v, horizon=h, scale=2.0)
    )
    assert got["mase"] == pytest.approx((1 + 0 + 0 + 4) / 4 / 2.0)
    assert got["smape"] == pytest.approx((2 / 21 + 0 + 0 + 8 / 12) / 4)
    assert got["rmse"] == pytest.approx(np.sqrt(17 / 4))
    assert got["rmse_h1"] == pytest.approx(np.sqrt(1 / 2))
    assert got["rmse_h2"] == pytest.approx(np.sqrt(16 / 2))


def test_custom_metric_is_called_on_the_rows() -> None:
    m = custom_metric(
        lambda y, p: float(np.max(np.abs(y - p))), name="max_error", higher_is_better=False
    )
    assert compute([m], np.array([1.0, 2.0]), Predictions(values=np.array([1.5, 4.0]))) == {
        "max_error": 2.0
    }


@pytest.mark.parametrize(
    ("pred", "message"),
    [
        (
            Predictions(labels=np.array([0, 1, 1])),
            "roc_auc needs predicted probabilities; the model has no predict_proba",
        ),
        (
            Predictions(scores=np.array([0.1, np.nan, np.inf])),
            "2 rows with NaN or inf (first: row 1)",
        ),
        (Predictions(scores=np.array([0.1, 0.2])), "got 2 rows; y_true has 3"),
        (Predictions(scores=np.array([0.1, 1.2, 0.3])), "outside [0, 1] (first: row 1"),
    ],
)
def test_bad_binary_input_is_a_clear_error(pred: Predictions, message: str) -> None:
    with pytest.raises(
        EvaluationError,
        match=message.replace("(", r"\(")
        .replace(")", r"\)")
        .replace("[", r"\[")
        .replace("]", r"\]"),
    ):
        compute(default_metrics("binary"), np.array([0, 1, 1]), pred)


def test_multiclass_rows_must_sum_to_one() -> None:
    p = np.array([[0.5, 0.5, 0.0], [0.5, 0.6, 0.0]])
    with pytest.raises(EvaluationError, match="do not sum to 1 \\(first: row 1"):
        compute(
            default_metrics("multiclass"),
            np.array([0, 1]),
            Predictions(labels=np.array([0, 1]), scores=p),
        )


def test_mase_without_scale_names_the_fix() -> None:
    with pytest.raises(EvaluationError, match="mase needs Predictions.scale"):
        compute(default_metrics("forecasting"), np.ones(3), Predictions(values=np.ones(3)))
