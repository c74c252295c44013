"""Window statistics against the reference: drift of the feature that moved (and no other),
data quality, the prediction mix, live and estimated performance, any table type, the
empty window, and a JSON-safe ``to_dict()``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from loopml.errors import InvalidParameterError
from loopml.monitoring.stats import QUANTILES, window_statistics


def _tables(rows: int = 300, *, shift: float = 0.0, seed: int = 0) -> tuple[Any, Any]:
    """A reference with a target, and a window of logged predictions (``b`` moved by ``shift``)."""
    rng = np.random.default_rng(seed)

    def features(n: int, b_shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "a": rng.normal(0, 1, n),
                "b": rng.normal(5, 2, n) + b_shift,
                "plan": rng.choice(["basic", "pro", "team"], n),
                "seats": rng.integers(1, 10, n),
            }
        )

    reference = features(rows, 0.0).assign(churn=rng.integers(0, 2, rows))
    current = features(rows, shift)
    current["score"] = rng.random(rows)
    current["prediction"] = (current["score"] >= 0.5).astype(int)
    return reference, current


FEATURES = ["a", "b", "plan", "seats"]


def _moved(reference: pd.DataFrame, column: str, seed: int) -> pd.DataFrame:
    """The reference's rows shuffled (same distributions), with ``column`` moved."""
    rng = np.random.default_rng(seed)
    window = reference[FEATURES].sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if column == "plan":  # most customers on the team plan now
        window["plan"] = rng.choice(["basic", "pro", "team"], len(window), p=[0.1, 0.1, 0.8])
    else:
        window[column] = window[column] + 2 * reference[column].std()
    return window


@pytest.mark.parametrize("column", ["b", "plan", "seats"])
@pytest.mark.parametrize("seed", range(2))
def test_drift_is_found_in_exactly_the_moved_feature(column: str, seed: int) -> None:
    reference, _ = _tables(seed=seed)
    stats = window_statistics(
        reference, _moved(reference, column, seed), features=FEATURES, prediction=None
    )
    assert stats.drifted == [column]
    psi = {c["column"]: c["statistics"]["psi"] for c in stats.to_dict()["drift"]["columns"]}
    assert psi[column] > 0.25
    assert all(v < 1e-9 for k, v in psi.items() if k != column)


@pytest.mark.parametrize("kind", ["pyarrow", "polars"])
def test_pyarrow_and_polars_tables_give_the_statistics_of_pandas(kind: str) -> None:
    reference, current = _tables(shift=1.0)
    convert = pa.Table.from_pandas if kind == "pyarrow" else pl.from_pandas
    args: dict[str, Any] = {
        "features": FEATURES,
        "score": "score",
        "target": "churn",
        "classes": [0, 1],
    }
    from_pandas = window_statistics(reference, current, **args).to_dict()
    other = window_statistics(convert(reference), convert(current), **args).to_dict()
    assert json.dumps(other, sort_keys=True) == json.dumps(from_pandas, sort_keys=True)


def test_quality_missing_rates_out_of_range_and_new_categories() -> None:
    reference = pd.DataFrame(
        {"age": [20.0, 30.0, 40.0, 50.0] * 5, "plan": ["basic", "pro"] * 10, "n": [1, 2] * 10}
    )
    current = pd.DataFrame(
        {
            "age": [10.0, 20.0, 35.0, 50.0, 60.0, np.nan, np.nan, 45.0, 30.0, 99.0],
            "plan": ["basic", "pro", "team", "team", "gold", None, "pro", "pro", "x", "basic"],
            "n": [1] * 10,
        }
    )
    q = window_statistics(
        reference, current, features=["age", "plan", "n"], prediction=None
    ).to_dict()["quality"]
    assert q["age"]["missing"] == pytest.approx(0.2)
    assert q["age"]["missing_reference"] == 0.0
    # 10, 60 and 99 are outside [20, 50]; the two missing values do not count.
    assert q["age"]["out_of_range"] == pytest.approx(3 / 8)
    assert q["plan"]["missing"] == pytest.approx(0.1)
    assert q["plan"]["new_categories"] == 3
    assert set(q["plan"]["new_examples"]) == {"team", "gold", "x"}
    assert "out_of_range" not in q["plan"]  # only numbers have a range
    assert q["n"]["out_of_range"] == 0.0


def test_prediction_shares_name_undeclared_classes_and_skip_missing_predictions() -> None:
    reference, current = _tables(rows=10)
    current["prediction"] = pd.array([1, 1, 0, 2, 1, None, 0, 1, 1, 2], dtype="Int64")
    mix = window_statistics(
        reference, current, features=["a"], target="churn", classes=[0, 1]
    ).to_dict()["prediction"]
    # Nine predictions: class 2 was never declared by the model, and is shown anyway.
    assert mix["shares"] == pytest.approx({"0": 2 / 9, "1": 5 / 9, "2": 2 / 9})
    assert list(mix["shares"])[:2] == ["0", "1"]  # the model's classes first, in order
    churn = reference["churn"]
    assert mix["reference_shares"] == pytest.approx(
        {"0": float((churn == 0).mean()), "1": float((churn == 1).mean())}
    )


def test_a_declared_class_never_predicted_has_share_zero() -> None:
    reference, current = _tables(rows=20)
    current["prediction"] = "yes"
    mix = window_statistics(reference, current, features=["a"], classes=["no", "yes"]).to_dict()[
        "prediction"
    ]
    assert mix["shares"] == {"no": 0.0, "yes": 1.0}
    assert "reference_shares" not in mix  # no target given


def test_score_quantiles_and_mean() -> None:
    reference, current = _tables(rows=200)
    current.loc[:9, "score"] = np.nan
    mix = window_statistics(
        reference, current, features=["a"], score="score", classes=[0, 1]
    ).to_dict()["prediction"]
    present = current["score"].dropna().to_numpy()
    assert list(mix["quantiles"]) == [str(q) for q in QUANTILES]
    assert [mix["quantiles"][str(q)] for q in QUANTILES] == pytest.approx(
        list(np.quantile(present, QUANTILES))
    )
    assert mix["mean"] == pytest.approx(present.mean())


def test_a_regressor_has_quantiles_of_its_prediction_and_live_error_metrics() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"x": rng.normal(size=50)})
    current = pd.DataFrame({"x": rng.normal(size=50), "prediction": rng.normal(10, 2, 50)})
    current["label"] = current["prediction"] + 1.0
    current.loc[:19, "label"] = np.nan
    d = window_statistics(reference, current, features=["x"], label="label").to_dict()
    assert "shares" not in d["prediction"]
    assert d["prediction"]["quantiles"]["0.5"] == pytest.approx(current["prediction"].median())
    live = d["performance"]["live"]
    assert live["labels"] == 30
    assert live["metrics"]["rmse"] == pytest.approx(1.0)
    assert live["metrics"]["mae"] == pytest.approx(1.0)
    assert "estimated" not in d["performance"]


def test_live_metrics_where_labels_arrived_compare_text_labels_with_numbers() -> None:
    reference, current = _tables(rows=8)
    current["prediction"] = [1, 0, 1, 0, 1, 0, 1, 0]
    current["label"] = ["1", "0", "0", None, "1", None, None, "0"]  # JSON labels, as text
    live = window_statistics(
        reference, current, features=["a"], label="label", classes=[0, 1]
    ).to_dict()["performance"]["live"]
    assert live["labels"] == 5
    assert live["metrics"]["accuracy"] == pytest.approx(4 / 5)
    assert live["metrics"]["f1"] == pytest.approx(0.8)  # tp 2, fp 1, fn 0


def test_float_labels_read_as_the_classes_they_name() -> None:
    reference, current = _tables(rows=4)
    current["prediction"] = [1, 0, 1, 0]
    current["label"] = [1.0, 0.0, np.nan, 1.0]  # pandas makes a numeric label column float
    live = window_statistics(
        reference, current, features=["a"], label="label", classes=[0, 1]
    ).to_dict()["performance"]["live"]
    assert live == {"labels": 3, "metrics": {"accuracy": pytest.approx(2 / 3), "f1": 2 / 3}}


@pytest.mark.parametrize("missing", [None, np.nan])
def test_a_label_column_without_any_label_gives_no_live_metrics(missing: Any) -> None:
    reference, current = _tables(rows=30)
    current["label"] = missing
    perf = window_statistics(
        reference, current, features=["a"], score="score", label="label", classes=[0, 1]
    ).to_dict()["performance"]
    assert perf["live"] == {"labels": 0, "metrics": {}}
    assert perf["estimated"]["rows"] == 30  # the estimate needs no labels


def test_estimated_performance_says_whether_it_was_calibrated() -> None:
    reference, current = _tables(rows=100)
    args: dict[str, Any] = {"features": ["a"], "score": "score", "classes": [0, 1]}
    raw = window_statistics(reference, current, **args).to_dict()["performance"]["estimated"]
    halved = window_statistics(reference, current, calibrate=lambda p: p / 2, **args).to_dict()[
        "performance"
    ]["estimated"]
    assert raw["calibrated"] is False and halved["calibrated"] is True
    assert set(raw["metrics"]) == {"accuracy", "f1", "roc_auc"}
    # Halved probabilities: the positive predictions are right half as often.
    assert halved["metrics"]["accuracy"]["value"] < raw["metrics"]["accuracy"]["value"]


def test_multiclass_probabilities_give_an_estimated_accuracy() -> None:
    reference, current = _tables(rows=3)
    current["prediction"] = ["a", "b", "c"]
    current["p_a"] = [0.8, 0.1, 0.3]
    current["p_b"] = [0.1, 0.6, 0.3]
    current["p_c"] = [0.1, 0.3, 0.4]
    est = window_statistics(
        reference,
        current,
        features=["a"],
        classes=["a", "b", "c"],
        probabilities={"a": "p_a", "b": "p_b", "c": "p_c"},
    ).to_dict()["performance"]["estimated"]
    assert est["metrics"]["accuracy"]["value"] == pytest.approx((0.8 + 0.6 + 0.4) / 3)


def test_an_empty_window_has_zero_rows_and_nothing_to_judge() -> None:
    reference, current = _tables(rows=50)
    current["label"] = None
    stats = window_statistics(
        reference,
        current.iloc[:0],
        features=FEATURES,
        score="score",
        label="label",
        target="churn",
        classes=[0, 1],
    )
    d = stats.to_dict()
    assert d["rows"] == 0 and d["drift"] is None and stats.drifted == []
    assert d["prediction"] == {} and d["performance"] == {}
    assert d["quality"]["a"]["missing"] is None
    json.dumps(d, allow_nan=False)


@pytest.mark.parametrize("table", ["reference", "current"])
def test_a_missing_feature_column_is_an_error_naming_it(table: str) -> None:
    reference, current = _tables(rows=10)
    if table == "reference":
        reference = reference.drop(columns="seats")
    else:
        current = current.drop(columns="seats")
    with pytest.raises(InvalidParameterError, match=r"\['seats'\]"):
        window_statistics(reference, current, features=FEATURES)


def test_a_missing_label_or_score_column_is_an_error_naming_it() -> None:
    reference, current = _tables(rows=10)
    with pytest.raises(InvalidParameterError, match=r"\['label'\]"):
        window_statistics(reference, current, features=["a"], label="label", classes=[0, 1])
    with pytest.raises(InvalidParameterError, match=r"\['proba'\]"):
        window_statistics(reference, current, features=["a"], score="proba", classes=[0, 1])


def test_to_dict_is_strict_json_with_non_finite_values_as_text() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 10, "k": [1.0] * 40})
    current = pd.DataFrame(
        {"x": [np.nan] * 40, "k": [1.0] * 39 + [np.inf], "prediction": [1.0] * 39 + [np.inf]}
    )
    d = window_statistics(reference, current, features=["x", "k"]).to_dict()
    back = json.loads(json.dumps(d, allow_nan=False))
    assert back == d
    stats = {c["column"]: c["statistics"] for c in back["drift"]["columns"]}
    assert stats["x"]["psi"] == "nan"  # every value missing: nothing to compare
    assert stats["k"]["wasserstein"] == "inf"
    assert back["prediction"]["mean"] == "inf"
    assert back["quality"]["k"]["out_of_range"] == pytest.approx(1 / 40)


def test_timestamps_outside_the_reference_period_are_out_of_range() -> None:
    reference = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=20, freq="D", tz="UTC")})
    current = pd.DataFrame({"when": pd.date_range("2024-01-15", periods=10, freq="D", tz="UTC")})
    q = window_statistics(reference, current, features=["when"], prediction=None).to_dict()
    assert q["quality"]["when"]["out_of_range"] == pytest.approx(0.4)  # 21st to 24th January


def test_regression_labels_sent_as_text_are_read_as_numbers() -> None:
    reference = pd.DataFrame({"x": np.arange(10.0)})
    current = pd.DataFrame(
        {
            "x": np.arange(10.0),
            "prediction": np.arange(10.0),
            "label": ["1.5", None, "2", "3", None, "5", "6", "7", "8", "9.5"],
        }
    )
    live = window_statistics(reference, current, features=["x"], label="label").to_dict()
    metrics = live["performance"]["live"]["metrics"]
    assert live["performance"]["live"]["labels"] == 8
    assert metrics["mae"] == pytest.approx(2.0 / 8)  # off by 1.5 and 0.5
    assert metrics["rmse"] == pytest.approx(np.sqrt((1.5**2 + 0.5**2) / 8))
