"""Performance of a monitored model: live metrics where labels arrived (checked against
scikit-learn), ROC AUC with soft labels, the isotonic calibration map, and the
confidence-based estimate with its interval (close to the realised metric, and covering it
about 95 % of the time when the scores are calibrated)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from loopml.errors import InvalidParameterError
from loopml.monitoring import performance
from loopml.monitoring.performance import (
    estimate_binary,
    estimate_multiclass,
    isotonic_calibration,
    live_metrics,
    roc_auc,
)


def _calibrated(rng: np.random.Generator, n: int) -> tuple[Any, Any]:
    """Scores that are the true probabilities of the labels drawn from them."""
    p = rng.beta(2, 2, n)
    return p, rng.random(n) < p


# -- ROC AUC --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_roc_auc_equals_sklearn_on_hard_labels_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    scores = rng.integers(0, 6, 60) / 5  # six distinct values: many ties
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_roc_auc_with_soft_labels_counts_each_row_as_part_positive_part_negative() -> None:
    rng = np.random.default_rng(3)
    w = rng.random(40)
    scores = rng.integers(0, 5, 40) / 4
    # The same thing spelled for sklearn: each row once as a positive (weight w) and once as
    # a negative (weight 1 - w).
    expected = roc_auc_score(
        np.r_[np.ones(40), np.zeros(40)], np.r_[scores, scores], sample_weight=np.r_[w, 1 - w]
    )
    assert roc_auc(w, scores) == pytest.approx(expected, abs=1e-12)
    # By hand: 0.75 positive at 0.9 beats 0.75 negative at 0.1; each row ties with itself.
    assert roc_auc([0.25, 0.75], [0.1, 0.9]) == pytest.approx(0.75)


def test_roc_auc_drops_missing_scores_and_is_nan_without_both_classes() -> None:
    assert roc_auc([1, 0, 1, 0], [0.9, 0.1, np.nan, 0.8]) == pytest.approx(
        roc_auc_score([1, 0, 0], [0.9, 0.1, 0.8])
    )
    assert np.isnan(roc_auc([1, 1, 1], [0.1, 0.5, 0.9]))
    assert np.isnan(roc_auc([0, 0], [0.1, 0.5]))


# -- live metrics -------------------------------------------------------------------------


def test_live_classifier_metrics_equal_sklearn_on_the_labelled_rows() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(80)
    predictions = (scores >= 0.5).astype(int)
    truth = (rng.random(80) < scores).astype(int)
    labels = np.array([str(t) for t in truth], dtype=object)
    labels[::4] = None  # a quarter of the labels never arrived
    out = live_metrics(labels, predictions.astype(str), scores, [0, 1])
    keep = np.arange(80) % 4 != 0
    assert out["labels"] == 60
    m = out["metrics"]
    assert m["accuracy"] == pytest.approx(accuracy_score(truth[keep], predictions[keep]))
    assert m["f1"] == pytest.approx(f1_score(truth[keep], predictions[keep]))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(truth[keep], scores[keep]))


def test_live_labels_sent_as_text_agree_with_numeric_predictions() -> None:
    labels = np.array(["1", "0", None, "1", np.nan], dtype=object)
    out = live_metrics(labels, np.array([1, 0, 1, 0, 1]), None, [0, 1])
    assert out["labels"] == 3  # None and NaN are no label
    assert out["metrics"]["accuracy"] == pytest.approx(2 / 3)
    assert out["metrics"]["f1"] == pytest.approx(f1_score([1, 0, 1], [1, 0, 0]))
    assert "roc_auc" not in out["metrics"]  # no scores given


def test_live_multiclass_metrics_are_accuracy_only() -> None:
    labels = np.array(["a", "b", "c", "c"], dtype=object)
    out = live_metrics(labels, np.array(["a", "b", "b", "c"], dtype=object), None, ["a", "b", "c"])
    assert out == {"labels": 4, "metrics": {"accuracy": 0.75}}


def test_live_regressor_metrics_equal_sklearn_and_skip_missing_labels() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, 50)
    pred = y + rng.normal(0, 1, 50)
    labels = y.copy()
    labels[:10] = np.nan
    out = live_metrics(labels, pred, None, None)
    assert out["labels"] == 40
    m = out["metrics"]
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y[10:], pred[10:])))
    assert m["mae"] == pytest.approx(mean_absolute_error(y[10:], pred[10:]))
    assert m["r2"] == pytest.approx(r2_score(y[10:], pred[10:]))


def test_live_metrics_without_any_label_are_empty() -> None:
    assert live_metrics(np.array([None, None], dtype=object), ["1", "0"], None, [0, 1]) == {
        "labels": 0,
        "metrics": {},
    }
    assert live_metrics(np.array([np.nan]), [1.0], None, None) == {"labels": 0, "metrics": {}}


# -- isotonic calibration -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_isotonic_calibration_agrees_with_sklearn_on_the_fitted_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 15, 150) / 14  # ties: labels 0 and 1 at the same score
    labels = (rng.random(150) < scores**2).astype(float)
    fitted = isotonic_calibration(scores, labels)
    sk = IsotonicRegression(out_of_bounds="clip").fit(scores, labels)
    assert np.allclose(fitted(scores), sk.predict(scores))
    # Outside the fitted range the map holds its end values, as out_of_bounds="clip" does.
    assert np.allclose(fitted([-1.0, 2.0]), sk.predict([-1.0, 2.0]))


def test_isotonic_calibration_pools_ties_whatever_the_order_of_their_labels() -> None:
    ascending = isotonic_calibration([0.2, 0.2, 0.5], [0, 1, 1])
    descending = isotonic_calibration([0.2, 0.2, 0.5], [1, 0, 1])
    assert ascending(0.2) == descending(0.2) == pytest.approx(0.5)


def test_isotonic_calibration_without_labelled_rows_is_an_error() -> None:
    with pytest.raises(InvalidParameterError, match="no rows"):
        isotonic_calibration([np.nan, 0.3], [1.0, np.nan])


# -- estimated performance ----------------------------------------------------------------


def test_estimate_binary_is_close_to_the_realised_metric_and_covers_it_about_95_percent() -> None:
    rng = np.random.default_rng(7)
    covered = {"accuracy": 0, "f1": 0, "roc_auc": 0}
    errors = []
    windows = 200
    for i in range(windows):
        p, y = _calibrated(rng, 300)
        predicted = p >= 0.5
        realised = {  # numpy for speed; sklearn agrees (the live-metric tests above)
            "accuracy": np.mean(predicted == y),
            "f1": 2 * np.sum(predicted & y) / (predicted.sum() + y.sum()),
            "roc_auc": roc_auc_score(y, p),
        }
        est = estimate_binary(p, None, [0, 1], seed=i)
        assert est["rows"] == 300 and est["calibrated"] is False
        for name, value in realised.items():
            m = est["metrics"][name]
            covered[name] += m["low"] <= value <= m["high"]
        errors.append(est["metrics"]["accuracy"]["value"] - realised["accuracy"])
    # Measured with this seed: accuracy 94 %, F1 94.5 %, ROC AUC 96 %.
    for name, hits in covered.items():
        assert 0.88 <= hits / windows <= 0.99, (name, hits / windows)
    assert abs(np.mean(errors)) < 0.01  # unbiased
    assert np.mean(np.abs(errors)) < 0.04  # and close in each window of 300


def test_calibrating_on_labelled_reference_data_brings_the_estimate_closer() -> None:
    rng = np.random.default_rng(5)

    def window(n: int) -> tuple[Any, Any]:
        p, y = _calibrated(rng, n)
        return p**3, y  # the model's scores: far too low

    ref_scores, ref_labels = window(2000)
    calibrate = isotonic_calibration(ref_scores, ref_labels)
    scores, y = window(1000)
    predicted = scores >= 0.5
    realised = accuracy_score(y, predicted)
    raw = estimate_binary(scores, predicted, [0, 1])
    fixed = estimate_binary(scores, predicted, [0, 1], calibrate)
    assert fixed["calibrated"] is True and raw["calibrated"] is False
    raw_error = abs(raw["metrics"]["accuracy"]["value"] - realised)
    fixed_error = abs(fixed["metrics"]["accuracy"]["value"] - realised)
    assert fixed_error < 0.04 < raw_error


def test_estimate_binary_follows_the_predictions_it_is_given() -> None:
    p = np.array([0.9, 0.8, 0.2, 0.1])
    as_scored = estimate_binary(p, None, [0, 1])["metrics"]["accuracy"]["value"]
    inverted = estimate_binary(p, p < 0.5, [0, 1])["metrics"]["accuracy"]["value"]
    assert as_scored == pytest.approx(0.85)  # mean of max(p, 1 - p)
    assert inverted == pytest.approx(0.15)


def test_estimate_binary_bounds_stay_within_zero_and_one() -> None:
    est = estimate_binary([0.99, 0.98, 0.97], None, [0, 1])
    for m in est["metrics"].values():
        if m["low"] is not None:
            assert 0.0 <= m["low"] <= m["value"] <= m["high"] <= 1.0


def test_a_metric_that_cannot_be_estimated_has_no_bounds() -> None:
    est = estimate_binary([0.0, 0.0, 0.0], None, [0, 1])  # certainly no positive
    assert est["metrics"]["accuracy"] == {"value": 1.0, "low": 1.0, "high": 1.0}
    assert est["metrics"]["roc_auc"] == {"value": "nan", "low": None, "high": None}


def test_estimate_binary_skips_missing_scores_and_is_empty_without_any() -> None:
    est = estimate_binary([0.9, np.nan, 0.1], None, [0, 1])
    assert est["rows"] == 2
    assert estimate_binary([np.nan, np.nan], None, [0, 1]) == {}


def test_estimate_binary_on_a_sample_keeps_the_width_of_the_full_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p, _ = _calibrated(np.random.default_rng(11), 4000)

    def width() -> float:
        m = estimate_binary(p, None, [0, 1])["metrics"]["accuracy"]
        return float(m["high"] - m["low"])

    full = width()
    monkeypatch.setattr(performance, "SAMPLE", 400)  # draws on a tenth, scaled back
    assert width() == pytest.approx(full, rel=0.3)


def test_estimate_multiclass_is_the_mean_top_probability() -> None:
    matrix = [[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [np.nan, 0.5, 0.5], [0.3, 0.3, 0.4]]
    est = estimate_multiclass(matrix)
    assert est["rows"] == 3  # the row with a missing probability is left out
    m = est["metrics"]["accuracy"]
    assert m["value"] == pytest.approx((0.7 + 0.5 + 0.4) / 3)
    assert 0.0 <= m["low"] < m["value"] < m["high"] <= 1.0
    assert estimate_multiclass(np.full((2, 3), np.nan)) == {}


def test_estimate_multiclass_interval_narrows_with_more_rows() -> None:
    rng = np.random.default_rng(2)
    small = estimate_multiclass(rng.dirichlet([2, 2, 2], 50))["metrics"]["accuracy"]
    large = estimate_multiclass(rng.dirichlet([2, 2, 2], 5000))["metrics"]["accuracy"]
    assert large["high"] - large["low"] < (small["high"] - small["low"]) / 5
