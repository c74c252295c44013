"""The vectorised bootstrap: equal to a naive loop on the same resamples, reproducible, calibrated."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from loopml.evaluation._weighted import Plan
from loopml.evaluation.bootstrap import bootstrap, paired_bootstrap, resample_counts
from loopml.evaluation.metrics import Predictions, custom_metric, default_metrics


def _binary(n: int, seed: int = 0, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    s = 1 / (1 + np.exp(-(y * 1.5 + rng.normal(0, noise, n) - 0.75)))
    return y, np.round(s, 3)  # some ties


def test_equals_a_naive_loop_on_the_same_resamples() -> None:
    y, s = _binary(3000)
    metrics = default_metrics("binary")
    got = bootstrap(metrics, y, Predictions(scores=s), resamples=40, seed=5, confidence=0.9)
    order = Plan(metrics, y, Predictions(scores=s)).order
    counts = resample_counts(len(y), resamples=40, seed=5)
    naive: dict[str, list[float]] = {m.name: [] for m in metrics}
    for b in range(40):
        i = np.repeat(order, counts[b])
        naive["roc_auc"].append(skm.roc_auc_score(y[i], s[i]))
        naive["pr_auc"].append(skm.average_precision_score(y[i], s[i]))
        naive["log_loss"].append(skm.log_loss(y[i], y_proba=s[i]))
        naive["brier"].append(skm.brier_score_loss(y[i], s[i]))
        naive["f1"].append(skm.f1_score(y[i], s[i] >= 0.5))
        naive["accuracy"].append(skm.accuracy_score(y[i], s[i] >= 0.5))
    for name, values in naive.items():
        low, high = np.percentile(values, [5, 95])
        assert got[name].low == pytest.approx(low, abs=1e-9), name
        assert got[name].high == pytest.approx(high, abs=1e-9), name


def test_ci_contains_the_estimate_is_reproducible_and_shrinks() -> None:
    metrics = default_metrics("binary")
    widths = []
    for n in (2_000, 32_000):
        y, s = _binary(n)
        first = bootstrap(metrics, y, Predictions(scores=s), resamples=200, seed=1)
        again = bootstrap(metrics, y, Predictions(scores=s), resamples=200, seed=1)
        assert first == again
        for est in first.values():
            assert est.low <= est.value <= est.high and est.undefined == 0
        widths.append(first["roc_auc"].high - first["roc_auc"].low)
    assert 2.5 < widths[0] / widths[1] < 6.5  # ~ sqrt(16) = 4


def test_coverage_of_a_mean_is_about_95_percent() -> None:
    rng = np.random.default_rng(11)
    metric = default_metrics("regression")[1]  # mae of y vs 0 = mean of |y|, true value 1
    hits = 0
    for r in range(100):
        y = rng.exponential(1.0, 400)
        est = bootstrap([metric], y, Predictions(values=np.zeros(400)), resamples=200, seed=r)[
            "mae"
        ]
        hits += est.low <= 1.0 <= est.high
    assert 85 <= hits <= 100


def test_undefined_resamples_are_counted_not_fatal() -> None:
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    s = np.linspace(0.1, 0.9, 8)
    est = bootstrap(default_metrics("binary")[:1], y, Predictions(scores=s), resamples=200)
    assert 0 < est["roc_auc"].undefined < 200


def test_custom_metric_under_bootstrap_and_progress() -> None:
    y = np.arange(50.0)
    seen: list[int] = []
    m = custom_metric(lambda t, p: float(np.mean(t - p)), name="bias")
    est = bootstrap([m], y, Predictions(values=y - 1), resamples=40, progress=seen.append)
    assert est["bias"] == est["bias"].__class__(1.0, 1.0, 1.0, 0)
    assert seen[-1] == 40 and seen == sorted(seen)


def test_paired_identical_models_and_a_clearly_better_one() -> None:
    y, s = _binary(5000, noise=0.7)
    metrics = default_metrics("binary")
    same = paired_bootstrap(metrics, y, Predictions(scores=s), Predictions(scores=s), resamples=200)
    for d in same.values():
        assert d.diff == 0 and d.low == 0 and d.high == 0 and d.p_value == 1.0 and d.better is None
    rng = np.random.default_rng(2)
    noisy = np.clip(s + rng.normal(0, 0.3, len(s)), 0, 1)
    diff = paired_bootstrap(
        metrics, y, Predictions(scores=s), Predictions(scores=noisy), resamples=200
    )
    assert (
        diff["roc_auc"].diff > 0
        and diff["roc_auc"].p_value < 0.01
        and diff["roc_auc"].better == "a"
    )
    assert diff["log_loss"].diff < 0 and diff["log_loss"].better == "a"
