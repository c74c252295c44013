"""Drift statistics: the numbers equal scipy's, the verdicts follow the thresholds, the
report round-trips and renders safely, and any of the three table libraries gives the
same result."""

from __future__ import annotations

import json
import math
import warnings
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from loopml.data.drift import DEFAULT_THRESHOLDS, drift
from loopml.data.drift_report import DriftReport
from loopml.data.drift_stats import PSI_EPSILON, smirnov_sf
from loopml.errors import InvalidParameterError, NotFoundError

TOL = 1e-9


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


def numeric_drift(x: Any, y: Any, **kwargs: Any) -> dict[str, float]:
    report = drift(pd.DataFrame({"x": x}), pd.DataFrame({"x": y}), **kwargs)
    return report["x"].statistics


def assert_matches_scipy(x: Any, y: Any) -> None:
    got = numeric_drift(x, y)
    with warnings.catch_warnings():
        # scipy warns when its exact p-value fails and it falls back: so do we, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        ks = stats.ks_2samp(x, y)
    w = stats.wasserstein_distance(x, y)
    assert close(got["ks"], ks.statistic), (got["ks"], ks.statistic)
    assert close(got["ks_pvalue"], ks.pvalue), (got["ks_pvalue"], ks.pvalue)
    assert close(got["wasserstein"], w), (got["wasserstein"], w)
    std = float(np.std(x))
    if std > 0:
        assert close(got["wasserstein_normed"], w / std)


RNG = np.random.default_rng(42)
CASES = {
    "normal, shifted": (RNG.normal(0, 1, 500), RNG.normal(0.3, 1.2, 700)),
    "same distribution": (RNG.normal(0, 1, 800), RNG.normal(0, 1, 800)),
    "rounded, many ties": (RNG.normal(0, 1, 900).round(1), RNG.normal(0, 1, 600).round(1)),
    "small integers": (RNG.integers(0, 5, 300), RNG.integers(1, 6, 400)),
    "constant vs shifted constant": (np.full(50, 3.0), np.full(40, 4.0)),
    "constant vs same constant": (np.full(50, 3.0), np.full(60, 3.0)),
    "one value each": (np.array([1.0]), np.array([2.0])),
    "tiny": (np.array([1.0, 2.0]), np.array([2.0, 2.0, 5.0])),
    "disjoint ranges": (RNG.uniform(0, 1, 100), RNG.uniform(5, 6, 120)),
    "exact p-value boundary n=10000": (RNG.normal(0, 1, 10_000), RNG.normal(0.02, 1, 9_000)),
    "asymptotic p-value": (RNG.normal(0, 1, 20_000), RNG.normal(0.02, 1, 15_000)),
    "asymptotic, ties": (RNG.integers(0, 50, 30_000), RNG.integers(0, 51, 12_000)),
    "asymptotic, vector Smirnov sum": (RNG.normal(0, 1, 50_000), RNG.normal(0.05, 1, 45_000)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_numeric_statistics_equal_scipy(case: str) -> None:
    x, y = CASES[case]
    assert_matches_scipy(x, y)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60),
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60),
)
def test_numeric_statistics_equal_scipy_on_any_sample(x: list[float], y: list[float]) -> None:
    assert_matches_scipy(np.array(x), np.array(y))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-3, 3), min_size=1, max_size=80),
    st.lists(st.integers(-3, 3), min_size=1, max_size=80),
)
def test_numeric_statistics_equal_scipy_with_heavy_ties(x: list[int], y: list[int]) -> None:
    assert_matches_scipy(np.array(x), np.array(y))


def test_infinite_values_give_what_scipy_gives() -> None:
    x = np.array([1.0, 2.0, np.inf, 3.0])
    y = np.array([-np.inf, 1.5, 2.5])
    got = numeric_drift(x, y)
    ks = stats.ks_2samp(x, y)
    assert close(got["ks"], ks.statistic) and close(got["ks_pvalue"], ks.pvalue)
    assert got["wasserstein"] == stats.wasserstein_distance(x, y) == math.inf


@pytest.mark.parametrize("n", [20_001, 150_000])
@pytest.mark.parametrize("n_d2", [2.2, 12.5, 200.0, 369.0])
def test_smirnov_tail_equals_scipy(n: int, n_d2: float) -> None:
    e = math.sqrt(n_d2 / n)
    got, expected = smirnov_sf(n, e), float(special.smirnov(n, e))
    assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-300), (got, expected)


def test_psi_equals_a_hand_computation_on_quartile_bins() -> None:
    ref = np.arange(100.0)  # quartile cuts 24.75, 49.5, 74.25: 25 values per bin
    cur = np.array([0.0] * 10 + [30.0] * 20 + [60.0] * 30 + [90.0] * 40)
    expected = sum(
        (c - 0.25) * math.log(c / 0.25) for c in (0.1, 0.2, 0.3, 0.4)
    )  # shares of cur in the four bins
    assert close(numeric_drift(ref, cur, bins=4)["psi"], expected)


def test_psi_gives_empty_bins_the_stated_epsilon() -> None:
    ref = np.arange(100.0)
    cur = np.zeros(10)  # every current value in the first quartile bin
    r, c = 0.25, [1.0, PSI_EPSILON, PSI_EPSILON, PSI_EPSILON]
    expected = sum((ci - r) * math.log(ci / r) for ci in c)
    assert close(numeric_drift(ref, cur, bins=4)["psi"], expected)


def test_psi_of_identical_samples_is_zero_and_a_constant_column_still_has_two_bins() -> None:
    x = RNG.normal(0, 1, 1000)
    assert numeric_drift(x, x)["psi"] == 0.0
    moved = numeric_drift(np.full(100, 1.0), np.full(100, 2.0))["psi"]
    assert close(moved, 2 * (1 - PSI_EPSILON) * math.log(1 / PSI_EPSILON))


def categorical_frames(ref: list[Any], cur: list[Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame({"c": ref}), pd.DataFrame({"c": cur})


def test_categorical_statistics_equal_scipy() -> None:
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur = ["a"] * 30 + ["b"] * 45 + ["c"] * 45
    col = drift(*categorical_frames(ref, cur))["c"]
    r, c = np.array([50, 30, 20]), np.array([30, 45, 45])
    chi = stats.chisquare(c, f_exp=r / r.sum() * c.sum())
    assert col.kind == "categorical"
    assert close(col.statistics["chi2"], chi.statistic)
    assert close(col.statistics["chi2_pvalue"], chi.pvalue)
    assert close(col.statistics["jensen_shannon"], jensenshannon(r, c))
    p, q = r / r.sum(), c / c.sum()
    assert close(col.statistics["psi"], float(np.sum((q - p) * np.log(q / p))))
    assert col.method == "chi2_pvalue" and col.drifted  # 100 rows: a small sample


def test_new_and_vanished_categories_are_listed_with_counts() -> None:
    ref = ["a"] * 5 + ["b"] * 3 + ["gone"] * 2
    cur = ["a"] * 4 + ["new"] * 6 + ["also new"] * 1
    col = drift(*categorical_frames(ref, cur))["c"]
    assert col.new_categories == (("new", 6), ("also new", 1))
    assert col.new_categories_total == 2
    assert col.vanished_categories == (("b", 3), ("gone", 2))
    assert col.statistics["chi2"] == math.inf and col.statistics["chi2_pvalue"] == 0.0
    r = np.array([5, 3, 2, 0, 0])
    c = np.array([4, 0, 0, 6, 1])
    assert close(col.statistics["jensen_shannon"], jensenshannon(r, c))


def test_category_lists_are_capped_but_totals_are_not() -> None:
    ref = ["a"] * 10
    cur = [f"n{i:02d}" for i in range(25)] + ["n00"]
    col = drift(*categorical_frames(ref, cur))["c"]
    assert col.new_categories_total == 25
    assert len(col.new_categories) == 10
    assert col.new_categories[0] == ("n00", 2)
    assert col.histogram is not None
    assert col.histogram.labels[-1] == "(other 16)"  # 10 shown + other = all 26 categories
    assert sum(col.histogram.current) == 26


def test_missing_values_are_left_out_and_reported_as_rates() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "c": ["a", None, "b", "a"]})
    cur = pd.DataFrame({"x": [np.nan, np.nan, 3.0, 5.0], "c": ["a", "b", "b", "a"]})
    report = drift(ref, cur)
    x = report["x"]
    assert (x.missing_rate_reference, x.missing_rate_current) == (0.25, 0.5)
    assert (x.count_reference, x.count_current) == (3, 2)
    assert close(x.statistics["ks"], stats.ks_2samp([1, 2, 4], [3, 5]).statistic)
    c = report["c"]
    assert (c.missing_rate_reference, c.missing_rate_current) == (0.25, 0.0)
    assert c.missing_rate_change == -0.25


def test_a_column_with_no_values_on_one_side_is_drifted_not_an_error() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0], "y": [np.nan, np.nan], "c": ["a", "b"]})
    cur = pd.DataFrame({"x": [np.nan, np.nan], "y": [np.nan, np.nan], "c": [None, None]})
    report = drift(ref, cur)
    assert report["x"].drifted and report["x"].method == "missing"
    assert math.isnan(report["x"].statistics["ks"])
    assert report["c"].drifted and report["c"].note == "all values missing in current"
    assert not report["y"].drifted and report["y"].note == "all values missing in both tables"


def test_schema_changes_are_reported_not_raised() -> None:
    ref = pd.DataFrame({"keep": [1, 2, 3], "gone": [1, 2, 3], "wider": [1, 2, 3], "k": [1, 2, 3]})
    cur = pd.DataFrame(
        {"keep": [1, 2, 3], "wider": [1.0, 2.0, 3.0], "k": ["1", "2", "3"], "added": ["x"] * 3}
    )
    report = drift(ref, cur)
    assert report.schema.added == (("added", "large_string"),)
    assert report.schema.removed == (("gone", "int64"),)
    assert ("wider", "int64", "double") in report.schema.changed
    assert report["added"].method == "schema" and report["added"].drifted
    assert report["gone"].note == "only in the reference"
    assert report["k"].method == "schema" and "kind changed" in report["k"].note
    assert not report["wider"].drifted  # same values, wider type
    assert report.schema.lines()[0] == "+ added (large_string)"


def test_columns_are_sorted_worst_first() -> None:
    rng = np.random.default_rng(1)
    n = 5000
    ref = pd.DataFrame({name: rng.normal(0, 1, n) for name in ("a", "b", "c", "d")})
    cur = pd.DataFrame(
        {
            "a": rng.normal(0, 1, n),  # stable
            "b": rng.normal(2.0, 1, n),  # far
            "c": rng.normal(0.5, 1, n),  # drifted, less
            "d": rng.normal(0.01, 1, n),  # stable, slightly moved
        }
    )
    report = drift(ref, cur)
    assert [c.column for c in report.columns][:2] == ["b", "c"]
    assert report.drifted == ["b", "c"]
    severities = [c.severity for c in report.columns]
    assert severities[:2] == sorted(severities[:2], reverse=True)
    assert list(report.frame()["column"]) == [c.column for c in report.columns]


def test_large_samples_are_judged_by_distances_small_ones_by_tests() -> None:
    rng = np.random.default_rng(2)
    big = drift(
        pd.DataFrame({"x": rng.normal(0, 1, 2000)}), pd.DataFrame({"x": rng.normal(0, 1, 2000)})
    )
    assert big["x"].method == "wasserstein_normed"
    assert big["x"].threshold == DEFAULT_THRESHOLDS["wasserstein_normed"]
    small = drift(
        pd.DataFrame({"x": rng.normal(0, 1, 1000)}), pd.DataFrame({"x": rng.normal(0, 1, 50)})
    )
    assert small["x"].method == "ks_pvalue"
    cats = pd.DataFrame({"c": ["a", "b"] * 1000})
    assert drift(cats, cats)["c"].method == "jensen_shannon"


def test_thresholds_can_be_overridden() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 3000)})
    cur = pd.DataFrame({"x": rng.normal(0.15, 1, 3000)})
    assert drift(ref, cur)["x"].drifted
    relaxed = drift(ref, cur, thresholds={"wasserstein_normed": 0.5})["x"]
    assert not relaxed.drifted and relaxed.threshold == 0.5
    tested = drift(ref, cur, thresholds={"small_sample": 10_000})["x"]
    assert tested.method == "ks_pvalue" and tested.drifted


@pytest.mark.parametrize(
    ("thresholds", "match"),
    [
        ({"jensen": 0.1}, r"Threshold 'jensen': unknown.*Did you mean 'jensen_shannon'"),
        ({"ks_pvalue": 1.5}, r"'ks_pvalue': got 1.5; expected a p-value strictly between"),
        ({"jensen_shannon": -1}, r"'jensen_shannon': got -1; expected a finite distance > 0"),
        ({"wasserstein_normed": "0.1"}, r"got '0.1'"),
        ({"small_sample": 2.5}, r"'small_sample': got 2.5; expected a whole number"),
        ([0.1], r"Parameter 'thresholds': got \[0.1\]"),
    ],
)
def test_bad_thresholds_name_the_key_value_and_fix(thresholds: Any, match: str) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(InvalidParameterError, match=match):
        drift(frame, frame, thresholds=thresholds)


@pytest.mark.parametrize(
    ("reference", "current", "kwargs", "match"),
    [
        (
            [1, 2, 3],
            pd.DataFrame({"x": [1]}),
            {},
            r"Parameter 'reference': got \[1, 2, 3\] of type builtins.list",
        ),
        (
            pd.DataFrame({"x": [1]}),
            np.zeros(3),
            {},
            r"Parameter 'current': got array\(\[0\., 0\., 0\.\]\) of type numpy.ndarray",
        ),
        (pd.DataFrame({"x": []}), pd.DataFrame({"x": [1]}), {}, r"'reference': got an empty table"),
        (pd.DataFrame({"x": [1]}), pd.DataFrame(), {}, r"'current': got an empty table"),
        (pd.DataFrame({"x": [1]}), pd.DataFrame({"x": [1]}), {"columns": ["y"]}, r"Column 'y'"),
        (pd.DataFrame({"x": [1]}), pd.DataFrame({"x": [1]}), {"columns": "x"}, r"columns=\['x'\]"),
        (pd.DataFrame({"x": [1]}), pd.DataFrame({"x": [1]}), {"bins": 1}, r"'bins': got 1"),
        (
            pd.DataFrame([[1, 2]], columns=["a", "a"]),
            pd.DataFrame({"a": [1]}),
            {},
            r"'reference': columns \['a'\] appear more than once",
        ),
    ],
)
def test_bad_input_is_an_invalid_parameter_error(
    reference: Any, current: Any, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        drift(reference, current, **kwargs)


def test_unknown_column_in_a_report_suggests_the_closest() -> None:
    frame = pd.DataFrame({"price": [1.0, 2.0]})
    with pytest.raises(NotFoundError, match="Did you mean 'price'"):
        drift(frame, frame)["prices"]


def test_columns_selects_and_keeps_the_given_ones() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert [c.column for c in drift(frame, frame, columns=["b"]).columns] == ["b"]


def mixed_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(4)
    n = 3000
    ref = pd.DataFrame(
        {
            "f": rng.normal(0, 1, n),
            "i": rng.integers(0, 100, n),
            "s": rng.choice(["a", "b", "c"], n),
            "b": rng.random(n) < 0.3,
            "t": pd.date_range("2024-01-01", periods=n, freq="h"),
        }
    )
    cur = pd.DataFrame(
        {
            "f": rng.normal(0.2, 1, n),
            "i": rng.integers(0, 110, n),
            "s": rng.choice(["a", "b", "d"], n),
            "b": rng.random(n) < 0.5,
            "t": pd.date_range("2024-02-01", periods=n, freq="h"),
        }
    )
    ref.loc[::10, "f"] = np.nan
    ref.loc[::7, "s"] = None
    return ref, cur


def test_pandas_polars_and_pyarrow_inputs_give_the_same_numbers() -> None:
    ref, cur = mixed_tables()
    by_pandas = drift(ref, cur)
    by_arrow = drift(pa.Table.from_pandas(ref), pa.Table.from_pandas(cur))
    by_polars = drift(pl.from_pandas(ref), pl.from_pandas(cur))
    expected = by_pandas.frame().drop(columns=["note"])
    for other in (by_arrow, by_polars):
        got = other.frame().drop(columns=["note"])
        pd.testing.assert_frame_equal(got, expected, rtol=1e-12)
    kinds = {c.column: c.kind for c in by_pandas.columns}
    assert kinds == {
        "f": "numeric",
        "i": "numeric",
        "s": "categorical",
        "b": "categorical",
        "t": "numeric",
    }


def test_categorical_dtypes_compare_by_value() -> None:
    ref = pd.DataFrame({"c": pd.Categorical(["a", "b", "a", "c"])})
    cur = pd.DataFrame({"c": ["a", "b", "b", "b"]})  # plain strings against a category
    col = drift(ref, cur)["c"]
    assert col.kind == "categorical"
    assert col.vanished_categories == (("c", 1),)
    assert close(col.statistics["jensen_shannon"], jensenshannon([2, 1, 1], [1, 3, 0]))


def test_float_nan_in_an_arrow_table_counts_as_missing() -> None:
    ref = pa.table({"x": pa.array([1.0, float("nan"), 3.0])})
    cur = pa.table({"x": pa.array([1.0, 2.0, None])})
    col = drift(ref, cur)["x"]
    assert col.missing_rate_reference == col.missing_rate_current == pytest.approx(1 / 3)


def test_to_dict_is_json_and_round_trips_with_non_finite_values() -> None:
    ref, cur = mixed_tables()
    cur["gone"] = np.nan  # all missing: NaN statistics
    ref["only_ref"] = 1
    report = drift(ref, cur)
    assert report["s"].statistics["chi2"] == math.inf
    text = json.dumps(report.to_dict(), allow_nan=False)
    back = DriftReport.from_dict(json.loads(text))
    assert back.to_dict() == report.to_dict()
    assert back["s"].statistics["chi2"] == math.inf
    assert math.isnan(back["only_ref"].score)
    assert back.columns[0].histogram == report.columns[0].histogram
    assert [c.column for c in back.columns] == [c.column for c in report.columns]


class StrictParser(HTMLParser):
    """Fails on a closing tag that does not match the open one (void elements excepted)."""

    VOID = {"meta", "br", "link", "img", "hr", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


HOSTILE = '<script>alert("x")</script> & </td>'


def hostile_report() -> DriftReport:
    ref = pd.DataFrame({HOSTILE: ["<b>", "a&b", "x"] * 20, "n": np.arange(60.0)})
    cur = pd.DataFrame({HOSTILE: ["</svg><script>", "a&b"] * 30, "n": np.arange(60.0) + 30})
    return drift(ref, cur)


def test_html_is_well_formed_self_contained_and_escapes_data(tmp_path: Path) -> None:
    report = hostile_report()
    page = report.to_html(tmp_path / "drift.html").read_text(encoding="utf-8")
    for html in (page, report._repr_html_()):
        parser = StrictParser()
        parser.feed(html)
        parser.close()
        assert parser.stack == [] and parser.scripts == 0
        assert "<script" not in html and "http://" not in html.replace(
            'xmlns="http://www.w3.org/2000/svg"', ""
        )
        assert "&lt;script&gt;" in html
    for svg in page.split("<svg")[1:]:
        ET.fromstring("<svg" + svg.split("</svg>")[0] + "</svg>")  # each chart parses as XML
    assert page.count("<svg") == 2


def test_rich_table_lists_every_column_worst_first() -> None:
    from rich.console import Console

    report = hostile_report()
    console = Console(record=True, width=200, color_system=None)
    console.print(report)
    text = console.export_text()
    assert "Drift: 2 of 2 columns drifted" in text
    assert text.index("n ") < text.index("<script>") or report.columns[0].column == HOSTILE
    assert "new: </svg><script> (30)" in text
