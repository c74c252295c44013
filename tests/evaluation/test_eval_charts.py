"""Evaluation charts: curves equal scikit-learn's where kept, stay small on huge sets, and every
SVG parses, with hostile labels escaped and no NaN in the output."""

from __future__ import annotations

import datetime
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import metrics
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopml._svg import escape
from loopml.errors import InvalidParameterError
from loopml.evaluation.charts import (
    calibration_svg,
    confusion_svg,
    forecast_svg,
    metric_bars_svg,
    pr_svg,
    predicted_vs_actual_svg,
    residuals_svg,
    roc_svg,
)
from loopml.evaluation.curves import calibration, confusion, pr_curve, roc_curve, sample_points

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(\"x\")</script> & 'q' \udcff\x00 end"
NOT_A_NUMBER = re.compile(r"nan|inf", re.IGNORECASE)


@pytest.fixture(scope="module")
def cancer() -> tuple[Any, Any]:
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.4, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train)
    return y_test, model.predict_proba(x_test)[:, 1]


def pairs(xs: Any, ys: Any) -> set[tuple[float, float]]:
    return set(zip(np.asarray(xs).tolist(), np.asarray(ys).tolist(), strict=True))


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None
    return root


# -- curves ----------------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [None, 1], ids=["distinct", "heavy-ties"])
def test_short_curves_are_exactly_sklearns(cancer: tuple[Any, Any], decimals: int | None) -> None:
    y, score = cancer
    score = score if decimals is None else score.round(decimals)
    fpr, tpr = roc_curve(y, score)
    sk_fpr, sk_tpr, _ = metrics.roc_curve(y, score)
    np.testing.assert_array_equal(fpr, sk_fpr)
    np.testing.assert_array_equal(tpr, sk_tpr)
    recall, precision = pr_curve(y, score, max_points=1000)
    sk_precision, sk_recall, _ = metrics.precision_recall_curve(y, score)
    np.testing.assert_array_equal(recall, sk_recall)
    np.testing.assert_array_equal(precision, sk_precision)


def test_thinned_curves_keep_exact_points_of_sklearns(cancer: tuple[Any, Any]) -> None:
    y, score = cancer
    recall, precision = pr_curve(y, score, max_points=40)
    sk_precision, sk_recall, _ = metrics.precision_recall_curve(y, score)
    assert len(recall) <= 40
    assert pairs(recall, precision) <= pairs(sk_recall, sk_precision)
    assert (recall[0], recall[-1], precision[-1]) == (sk_recall[0], 0.0, 1.0)


def test_ties_on_a_larger_set_thin_to_sklearns_points() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 50_000)
    score = np.round(rng.random(y.size) * 0.7 + 0.3 * y, 3)  # ~1,000 distinct, many ties
    fpr, tpr = roc_curve(y, score)
    sk_fpr, sk_tpr, _ = metrics.roc_curve(y, score, drop_intermediate=False)
    assert 100 < len(fpr) <= 200 and pairs(fpr, tpr) <= pairs(sk_fpr, sk_tpr)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    recall, precision = pr_curve(y, score)
    sk_precision, sk_recall, _ = metrics.precision_recall_curve(y, score)
    assert len(recall) <= 200 and pairs(recall, precision) <= pairs(sk_recall, sk_precision)


def test_a_million_rows_give_a_few_hundred_points_quickly() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1_000_000)
    score = rng.random(y.size) * 0.6 + 0.3 * y
    started = time.perf_counter()
    fpr, _ = roc_curve(y, score)
    recall, _ = pr_curve(y, score)
    predicted, _, count = calibration(y, score)
    xs, _ = sample_points(score, y)
    elapsed = time.perf_counter() - started
    assert len(fpr) <= 200 and len(recall) <= 200 and len(xs) <= 2000
    assert len(fpr) > 150  # the budget is used, not wasted on straight runs
    assert count.sum() == y.size and len(predicted) == 9  # scores reach 0.9: 9 bins hold rows
    assert elapsed < 3.0  # ~0.5 s on an idle core; the machine is shared


def test_one_class_gives_nan_rates_like_sklearn_and_empty_gives_nothing() -> None:
    fpr, tpr = roc_curve([1, 1, 1], [0.2, 0.5, 0.9])
    assert np.isnan(fpr).all() and tpr.tolist() == [0.0, 1 / 3, 1.0]  # 2/3 is evenly between
    assert [len(a) for a in roc_curve([], [])] == [0, 0]
    with pytest.raises(InvalidParameterError, match="1 scores are NaN"):
        roc_curve([0, 1], [0.1, float("nan")])


def test_calibration_matches_sklearn_uniform_bins(cancer: tuple[Any, Any]) -> None:
    y, score = cancer
    score = np.r_[score, 0.3, 0.5]  # scores exactly on inner edges go to the left bin there too
    y = np.r_[y, 0, 1]
    predicted, positive, count = calibration(y, score, bins=10)
    sk_positive, sk_predicted = calibration_curve(y, score, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(predicted, sk_predicted, rtol=1e-12)
    np.testing.assert_allclose(positive, sk_positive, rtol=1e-12)
    assert count.sum() == len(y) and (count > 0).all()
    with pytest.raises(InvalidParameterError, match="outside \\[0, 1\\]"):
        calibration([0, 1], [0.5, 1.5])


def test_confusion_counts_match_sklearn_and_bad_codes_are_refused() -> None:
    rng = np.random.default_rng(1)
    true, pred = rng.integers(0, 4, 1000), rng.integers(0, 4, 1000)
    np.testing.assert_array_equal(
        confusion(true, pred, 4), metrics.confusion_matrix(true, pred, labels=range(4))
    )
    with pytest.raises(InvalidParameterError, match="1 true codes are not integers in 0..3"):
        confusion([0, -1], [0, 1], 4)


def test_sample_points_is_deterministic_bounded_and_keeps_the_extremes() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=100_000), rng.normal(size=100_000)
    x[5], y[7] = np.nan, np.inf
    first, again = sample_points(x, y, max_points=500), sample_points(x, y, max_points=500)
    np.testing.assert_array_equal(first[0], again[0])
    assert len(first[0]) == 500 and np.isfinite(first).all()
    finite = np.isfinite(x) & np.isfinite(y)
    assert first[0].max() == x[finite].max() and first[1].min() == y[finite].min()


# -- charts ----------------------------------------------------------------------------------

Builder = Callable[[str, Any], str]
CHARTS: dict[str, Builder] = {
    "roc": lambda label, v: roc_svg([(label, [0.0, v[1], 1.0], [0.0, v[2], 1.0], v[3])]),
    "pr": lambda label, v: pr_svg(
        [(label, [1.0, v[1], 0.0], [0.4, v[2], 1.0], v[3])], base_rate=v[4]
    ),
    "calibration": lambda label, v: calibration_svg([(label, [0.1, v[1]], [0.2, v[2]], [5, 6])]),
    "confusion": lambda label, v: confusion_svg([[5, v[0]], [0, 0]], [label, "b"]),
    "residuals": lambda label, v: residuals_svg([1.0, v[1], 3.0], [1.5, 2.0, v[2]], title=label),
    "predicted_vs_actual": lambda label, v: predicted_vs_actual_svg(
        [1.0, v[1], 3.0], [1.5, 2.0, v[2]], title=label
    ),
    "forecast": lambda label, v: forecast_svg(
        [0, 1, 2, 3], [1.0, v[1], 2.0, 3.0], {label: ([2, 3], [v[2], 2.5])}
    ),
    "metric_bars": lambda label, v: metric_bars_svg(
        [(label, v[1], v[2], v[3]), ("b", 0.8, 0.7, 0.9)], title=label, metric="AUC"
    ),
}
FINE = (3, 0.5, 0.6, 0.9, 0.4)
NAN = (float("nan"), float("nan"), float("inf"), float("nan"), float("nan"))


@pytest.mark.parametrize("chart", sorted(CHARTS))
def test_every_chart_parses_and_escapes_hostile_labels(chart: str) -> None:
    root = parse(CHARTS[chart](HOSTILE, FINE))
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    text = "".join(root.itertext())
    assert '<script>alert("x")' in text  # shown as text, not markup
    assert "\ufffd" in text and "\udcff" not in text and "\x00" not in text


@pytest.mark.parametrize("chart", sorted(CHARTS))
def test_nan_and_infinity_never_reach_the_svg(chart: str) -> None:
    svg = CHARTS[chart]("model", NAN)
    parse(svg)
    assert not NOT_A_NUMBER.search(svg), NOT_A_NUMBER.findall(svg)


@pytest.mark.parametrize(
    "svg",
    [
        roc_svg([]),
        roc_svg([("m", [], [], None)]),
        pr_svg([("m", [float("nan")], [float("nan")], 0.5)]),
        calibration_svg([]),
        confusion_svg([], []),
        residuals_svg([], []),
        predicted_vs_actual_svg([float("nan")], [1.0]),
        forecast_svg([], [], {}),
        metric_bars_svg([]),
    ],
)
def test_empty_input_gives_a_small_no_data_chart(svg: str) -> None:
    assert "no data" in "".join(parse(svg).itertext())


def test_roc_draws_every_model_the_diagonal_and_a_legend_with_auc(cancer: tuple[Any, Any]) -> None:
    y, score = cancer
    curves = [
        ("logreg", *roc_curve(y, score), metrics.roc_auc_score(y, score)),
        ("rounded", *roc_curve(y, score.round(1)), None),
    ]
    root = parse(roc_svg(curves))
    assert len(list(root.iter(f"{SVG}polyline"))) == 3  # the axes and the two models
    text = "".join(root.itertext())
    assert f"logreg (AUC {metrics.roc_auc_score(y, score):.3f})" in text and "chance" in text


def test_confusion_cells_show_count_and_row_share_readably() -> None:
    root = parse(confusion_svg([[90, 10], [0, 0]], ["yes", "no"]))
    cells = [g for g in root.iter(f"{SVG}g") if g.find(f"{SVG}rect") is not None]
    first = cells[0]
    texts = [t.text for t in first.iter(f"{SVG}text")]
    assert texts == ["90", "90.0%"]
    assert {t.get("fill") for t in first.iter(f"{SVG}text")} == {"#fff"}  # dark cell
    assert {t.get("fill") for t in cells[1].iter(f"{SVG}text")} == {"#333"}  # light cell
    assert "–" in [t.text for t in cells[3].iter(f"{SVG}text")]  # an empty row has no share


def test_scatter_of_a_huge_set_draws_a_sample_and_says_so() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=200_000)
    root = parse(residuals_svg(y, y + rng.normal(size=y.size), max_points=1000))
    assert len(list(root.iter(f"{SVG}circle"))) == 1000
    assert "1000 of 200000 rows" in "".join(root.itertext())


def test_metric_bars_show_value_and_interval_with_fixed_decimals() -> None:
    svg = metric_bars_svg([("all", 0.9123, 0.85, 0.95), ("tiny", float("nan"), None, None)])
    text = "".join(parse(svg).itertext())
    # one decimal more than the ticks (0.02 apart), the same for every number of the chart
    assert "0.912 [0.850, 0.950]" in text and "n/a" in text


def test_forecast_accepts_datetimes_and_labels_ticks_as_dates() -> None:
    t = np.arange("2024-01-01", "2024-03-01", dtype="datetime64[D]")
    actual = np.linspace(0, 1, t.size)
    root = parse(forecast_svg(t, actual, {7: (t[30:], actual[30:] + 0.1)}))
    assert re.search(r"2024-0[12]-\d\d", "".join(root.itertext()))
    days = [datetime.date(2024, 1, d) for d in range(1, 11)]
    root = parse(forecast_svg(days, range(10), {"fold 1": (days[5:], range(5))}))
    assert re.search(r"2024-01-\d\d", "".join(root.itertext()))


def test_escape_replaces_what_xml_cannot_hold() -> None:
    assert escape('<a href="x">&\udcff\x1f') == "&lt;a href=&quot;x&quot;&gt;&amp;\ufffd\ufffd"
