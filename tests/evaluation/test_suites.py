"""Suites on real data: every model judged on the same rows, the same way, with intervals.

scikit-learn's bundled breast cancer (binary), wine (multiclass) and diabetes (regression)
sets and statsmodels' bundled CO2 series (forecasting): nothing is downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.evaluation.errors import EvaluationError
from loopml.evaluation.suites import create_suite
from loopml.tracking.client import Client

RESAMPLES = 200  # enough for intervals that mean something, fast enough for CI


def cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns={"target": "malignant"})
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["site"] = np.where(np.arange(len(frame)) % 3 == 0, "north", "south")
    return frame


def logistic(X: pd.DataFrame, y: pd.Series) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


@pytest.fixture
def binary_suite(project: Path) -> Any:
    suite, created = create_suite(
        "cancer",
        data=cancer(),
        target="malignant",
        task="binary",
        split="stratified:test=0.3,seed=7",
        slices=["site"],
        features=[c for c in cancer().columns if c not in ("malignant", "site")],
    )
    assert created
    return suite


def test_models_from_three_libraries_are_judged_on_the_same_rows(binary_suite: Any) -> None:
    import lightgbm
    import xgboost
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = binary_suite.train()
    models = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y),
        "xgboost": xgboost.XGBClassifier(n_estimators=40, max_depth=3).fit(X, y),
        "lightgbm": lightgbm.LGBMClassifier(n_estimators=40, verbose=-1).fit(X, y),
    }
    results = {
        name: binary_suite.evaluate(model, resamples=RESAMPLES, label=name)
        for name, model in models.items()
    }
    truths = [r.predictions()[0] for r in results.values()]
    assert all(np.array_equal(truths[0], t) for t in truths)
    assert len(truths[0]) == binary_suite.version.test_rows == 171

    for result in results.values():
        auc = result["roc_auc"]
        assert 0.9 < auc.value <= 1.0
        assert auc.low <= auc.value <= auc.high
        assert set(result.metrics) >= {"roc_auc", "pr_auc", "log_loss", "brier", "f1", "accuracy"}

    # the point estimates are scikit-learn's, on exactly the suite's test rows
    from sklearn.metrics import roc_auc_score

    frame = binary_suite.frame()
    test_rows = binary_suite.parts()[0].test
    X_test = frame.iloc[test_rows][list(binary_suite.options.features)]
    expected = roc_auc_score(
        frame.iloc[test_rows]["malignant"], models["xgboost"].predict_proba(X_test)[:, 1]
    )
    assert results["xgboost"]["roc_auc"].value == pytest.approx(expected, abs=1e-12)

    board = binary_suite.leaderboard()
    assert [e.model for e in board.entries] == sorted(
        results, key=lambda n: -results[n]["roc_auc"].value
    )
    assert board.entries[0].group == 1


def test_the_same_definition_is_the_same_version_and_a_change_is_a_new_one(
    binary_suite: Any,
) -> None:
    features = list(binary_suite.options.features)
    again, created = create_suite(
        "cancer",
        data=binary_suite.dataset,
        target="malignant",
        task="binary",
        split="stratified:test=0.3,seed=7",
        slices=["site"],
        features=features,
    )
    assert not created and again.label == "cancer@1"
    other, created = create_suite(
        "cancer",
        data=binary_suite.dataset,
        target="malignant",
        task="binary",
        split="stratified:test=0.3,seed=8",
        features=features,
    )
    assert created and other.label == "cancer@2"
    assert other.version.indices_hash != binary_suite.version.indices_hash
    assert loopml.suite("cancer").label == "cancer@2"
    assert loopml.suite("cancer@1").split == "stratified:test=0.3,seed=7"


def test_training_code_never_gets_the_test_rows(binary_suite: Any) -> None:
    X, _ = binary_suite.train()
    test_rows = set(binary_suite.parts()[0].test.tolist())
    frame = binary_suite.frame()
    train_positions = set(frame.index.get_indexer(X.index).tolist())
    assert not train_positions & test_rows
    assert len(train_positions) + len(test_rows) == len(frame)
    assert not hasattr(binary_suite, "test")
    with pytest.raises(EvaluationError, match="no validation part"):
        binary_suite.validation()


def test_a_stored_result_is_reused_unless_forced(binary_suite: Any) -> None:
    X, y = binary_suite.train()
    model = logistic(X, y)
    first = binary_suite.evaluate(model, resamples=RESAMPLES)
    again = binary_suite.evaluate(model, resamples=RESAMPLES)
    assert not first.reused and again.reused and again.id == first.id
    assert again["roc_auc"] == first["roc_auc"]
    forced = binary_suite.evaluate(model, resamples=RESAMPLES, force=True)
    assert not forced.reused
    assert len(binary_suite.evaluations()) == 1  # replaced, not duplicated
    other_settings = binary_suite.evaluate(model, resamples=RESAMPLES + 1)
    assert not other_settings.reused


def test_a_slice_where_the_model_is_clearly_worse_is_flagged(project: Path) -> None:
    rng = np.random.default_rng(0)
    n = 4000
    x = rng.normal(size=n)
    region = np.where(rng.random(n) < 0.25, "east", "west")
    y = (x + rng.normal(scale=0.3, size=n) > 0).astype(int)
    y[region == "east"] = rng.integers(0, 2, size=int((region == "east").sum()))  # pure noise
    frame = pd.DataFrame({"x": x, "region": region, "y": y})
    suite, _ = create_suite("regions", data=frame, target="y", task="binary", slices=["region"])
    from sklearn.linear_model import LogisticRegression

    X, y_train = suite.train()
    model = LogisticRegression().fit(X[["x"]], y_train)
    result = suite.evaluate(lambda X: model.predict_proba(X[["x"]])[:, 1], resamples=RESAMPLES)
    assert result.worse_slices == [("region", "east")]
    by_slice = result.slices().query("metric == 'roc_auc'").set_index("value")
    assert by_slice.loc["east", "metric_value"] < 0.65 < by_slice.loc["west", "metric_value"]


def test_multiclass_and_regression_defaults(project: Path) -> None:
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import Ridge
    from sklearn.metrics import f1_score, mean_squared_error

    wine = load_wine(as_frame=True).frame
    wine["target"] = wine["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    suite, _ = create_suite("wine", data=wine, target="target", task="multiclass")
    X, y = suite.train()
    forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y)
    result = suite.evaluate(forest, resamples=RESAMPLES)
    assert set(result.metrics) == {"accuracy", "macro_f1", "log_loss"}
    test = suite.frame().iloc[suite.parts()[0].test]
    expected = f1_score(test["target"], forest.predict(test[X.columns]), average="macro")
    assert result["macro_f1"].value == pytest.approx(expected, abs=1e-12)

    diabetes = load_diabetes(as_frame=True).frame
    reg, _ = create_suite("diabetes", data=diabetes, target="target", task="regression")
    X, y = reg.train()
    ridge = Ridge(alpha=0.1).fit(X, y)
    result = reg.evaluate(ridge, resamples=RESAMPLES)
    assert set(result.metrics) == {"rmse", "mae", "r2", "mape"}
    test = reg.frame().iloc[reg.parts()[0].test]
    rmse = math.sqrt(mean_squared_error(test["target"], ridge.predict(test[X.columns])))
    assert result["rmse"].value == pytest.approx(rmse, rel=1e-12)
    assert result["rmse"].low < rmse < result["rmse"].high


def test_a_rolling_origin_backtest_refits_at_each_origin(project: Path) -> None:
    import statsmodels.api as sm

    co2 = sm.datasets.co2.load_pandas().data.resample("MS").mean().interpolate().reset_index()
    co2.columns = ["month", "co2"]
    co2["month_number"] = co2["month"].dt.month
    suite, _ = create_suite(
        "co2",
        data=co2,
        target="co2",
        task="forecasting",
        split="rolling:column=month,horizon=12,folds=4",
        season=12,
    )
    seen: list[int] = []

    def last_year_plus_trend(history: pd.DataFrame, horizon: int) -> np.ndarray:
        seen.append(len(history))
        y = history["co2"].to_numpy()
        return (y[-12:] + (y[-12:].mean() - y[-24:-12].mean()))[:horizon]

    def last_value(history: pd.DataFrame, horizon: int) -> np.ndarray:
        return np.repeat(history["co2"].to_numpy()[-1], horizon)

    seasonal = suite.evaluate(last_year_plus_trend, resamples=RESAMPLES)
    flat = suite.evaluate(last_value, resamples=RESAMPLES)
    assert len(seen) == 4 and seen == sorted(seen) and seen[1] - seen[0] == 12
    assert {"mase", "smape", "rmse", "rmse_h1", "rmse_h12"} <= set(seasonal.metrics)
    assert seasonal["mase"].value < 1 < flat["mase"].value  # CO2 is seasonal with a trend
    comparison = suite.compare(last_year_plus_trend, last_value, resamples=RESAMPLES)
    assert comparison["mase"].verdict == "a"


def test_inside_a_pipeline_the_figures_go_to_the_run(project: Path) -> None:
    create_suite("cancer", data=cancer(), target="malignant", task="binary", slices=["site"])

    @loopml.step
    def train_and_evaluate(c: float) -> float:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        suite = loopml.suite("cancer")
        X, y = suite.train()
        X = X.drop(columns="site")
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(X, y)
        predict = _FeatureSubset(model, list(X.columns))
        return suite.evaluate(predict, resamples=RESAMPLES)["roc_auc"].value

    @loopml.pipeline(name="train")
    def train(c: float = 1.0) -> None:
        train_and_evaluate(c)

    train(c=1.0)
    train(c=0.001)
    client = Client()
    runs = client.search_runs(sort="name")
    metrics = [r.metrics for r in runs]
    assert all("cancer.roc_auc" in m and "cancer.roc_auc.low" in m for m in metrics)
    board = loopml.suite("cancer").leaderboard()
    assert len(board.entries) == 2
    assert {e.run_id for e in board.entries} == {r.id for r in runs}


class _FeatureSubset:
    """A model wrapper that picks its columns: any object with predict_proba works."""

    def __init__(self, model: Any, columns: list[str]) -> None:
        self.model, self.columns = model, columns

    def predict_proba(self, X: pd.DataFrame) -> Any:
        return self.model.predict_proba(X[self.columns])


def test_custom_metrics_by_import_path(project: Path) -> None:
    (project / "my_metrics.py").write_text(
        "import numpy as np\n"
        "def top_decile_rate(y_true, scores):\n"
        "    order = np.argsort(-scores)[: max(1, len(scores) // 10)]\n"
        "    return float(np.mean(y_true[order]))\n"
    )
    import sys

    sys.path.insert(0, str(project))
    try:
        suite, _ = create_suite(
            "cancer",
            data=cancer(),
            target="malignant",
            task="binary",
            metrics=["my_metrics:top_decile_rate"],
        )
        result = suite.evaluate(lambda X: np.full(len(X), 0.5), resamples=50)
        assert "top_decile_rate" in result.metrics
        with pytest.raises(EvaluationError, match="cannot be imported"):
            create_suite(
                "cancer2",
                data=suite.dataset,
                target="malignant",
                task="binary",
                metrics=["my_metrics:nope"],
            )
    finally:
        sys.path.remove(str(project))
        sys.modules.pop("my_metrics", None)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"target": "nope"}, "no target column 'nope'"),
        ({"target": "site"}, "numeric target"),  # regression on labels
        ({"target": "malignant", "split": "random:test=0.0001,seed=0"}, "empty"),
        ({"target": "malignant", "task": "guess"}, "not one of"),
        ({"target": "malignant", "slices": ["nowhere"]}, "no feature or slice column 'nowhere'"),
    ],
)
def test_bad_definitions_name_the_problem(
    project: Path, kwargs: dict[str, Any], needle: str
) -> None:
    args = {"task": "regression", **kwargs}
    with pytest.raises(loopml.LoopmlError, match=needle):
        create_suite("bad", data=cancer(), **args)
    assert Client().suites() == []


def test_a_multiclass_target_given_as_binary_is_refused(project: Path) -> None:
    from sklearn.datasets import load_wine

    with pytest.raises(EvaluationError, match="exactly 2 values.*has 3.*multiclass"):
        create_suite("wine", data=load_wine(as_frame=True).frame, target="target", task="binary")


def test_bad_models_and_predictions_are_named(binary_suite: Any) -> None:
    from sklearn.svm import LinearSVC

    X, y = binary_suite.train()
    n = binary_suite.version.test_rows
    cases = [
        (LinearSVC().fit(X, y), "roc_auc needs predicted probabilities"),
        (lambda X: np.full(len(X), np.nan), "NaN or infinite"),
        (lambda X: np.full(len(X) - 1, 0.5), f"{n - 1:,} predictions for {n:,} test rows"),
        (lambda X: 1 / 0, "ZeroDivisionError"),
        (object(), "cannot be evaluated"),
    ]
    for model, needle in cases:
        with pytest.raises(EvaluationError, match=needle):
            binary_suite.evaluate(model, resamples=10)
    assert binary_suite.evaluations() == []


def test_a_class_the_model_never_saw_is_named(project: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.DataFrame({"x": np.arange(300.0), "y": ["a", "b", "c"] * 100})
    suite, _ = create_suite("abc", data=frame, target="y", task="multiclass")
    X, y = suite.train()
    keep = y != "c"
    model = DecisionTreeClassifier().fit(X[keep], y[keep])
    with pytest.raises(EvaluationError, match="class 'c'.*never trained on"):
        suite.evaluate(model, resamples=10)


def test_gc_keeps_what_suites_use_and_frees_a_removed_suite(binary_suite: Any) -> None:
    X, y = binary_suite.train()
    binary_suite.evaluate(logistic(X, y), resamples=20)
    client = Client()
    report = client.gc(grace_s=0)
    assert report.deleted == []
    result = binary_suite.evaluations()[0]
    assert result["roc_auc"].value > 0.9
    assert result.predictions()[0].shape == (171,)
    with pytest.raises(loopml.LoopmlError, match="evaluation suite cancer@1"):
        client.remove_dataset_version(binary_suite.dataset)
    client.remove_suite_version("cancer@1")
    assert len(client.gc(grace_s=0).deleted) >= 3  # indices, predictions, result


def test_suites_and_evaluations_on_each_store_backend(client: Client) -> None:
    """The same definitions, reuse, replacement and removal on SQLite and PostgreSQL."""
    frame = pd.DataFrame({"x": np.arange(200.0), "y": np.arange(200.0) * 2 + 1})
    first, created = create_suite("line", data=frame, target="y", task="regression", client=client)
    again, created_again = create_suite(
        "line", data=frame, target="y", task="regression", client=client
    )
    assert created and not created_again and again.label == first.label == "line@1"
    second, _ = create_suite(
        "line",
        data=frame,
        target="y",
        task="regression",
        split="random:test=0.3,seed=1",
        client=client,
    )
    assert [v.label for v in client.suites()] == ["line@2"]

    def exact(X: pd.DataFrame) -> np.ndarray:
        return X["x"].to_numpy() * 2 + 1

    result = first.evaluate(exact, resamples=50)
    assert result["rmse"].value == 0 and result["r2"].value == 1
    assert first.evaluate(exact, resamples=50).reused
    assert not first.evaluate(exact, resamples=50, force=True).reused
    assert len(client.evaluations(first.version)) == 1  # replaced, not added
    client.remove_suite_version("line@1")
    assert [v.number for v in client.suite_versions("line")] == [2]
    assert client.evaluations(second.version) == []
