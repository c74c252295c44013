"""Any model: native XGBoost and LightGBM boosters, statsmodels results, plain functions and
models stored by earlier runs are judged on one suite, and the result displays in a notebook.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.evaluation.suites import create_suite
from loopml.tracking.client import Client

RESAMPLES = 100


@pytest.fixture
def suite(project: Path) -> Any:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "malignant"})
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["malignant"] = frame["malignant"].map({0: "no", 1: "yes"})  # labels, not codes
    made, _ = create_suite("cancer", data=frame, target="malignant", task="binary")
    return made


def _codes(y: pd.Series) -> np.ndarray:
    return (y == "yes").to_numpy(dtype=int)


def test_native_boosters_and_statsmodels_results_agree_with_their_own_probabilities(
    suite: Any,
) -> None:
    import lightgbm
    import statsmodels.api as sm
    import xgboost
    from sklearn.metrics import roc_auc_score

    X, y = suite.train()
    columns = ["mean_radius", "mean_texture", "mean_smoothness", "worst_concavity"]
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3},
        xgboost.DMatrix(X, label=_codes(y)),
        num_boost_round=30,
    )
    gbm = lightgbm.train(
        {"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, label=_codes(y)), 30
    )
    logit = sm.Logit(_codes(y), sm.add_constant(X[columns])).fit(disp=0)

    frame = suite.frame()
    test = frame.iloc[suite.parts()[0].test]
    truth = _codes(test["malignant"])
    expected = {
        "xgboost": roc_auc_score(truth, booster.predict(xgboost.DMatrix(test[X.columns]))),
        "lightgbm": roc_auc_score(truth, gbm.predict(test[X.columns])),
        "statsmodels": roc_auc_score(truth, logit.predict(sm.add_constant(test[columns]))),
    }
    judged = {
        "xgboost": suite.evaluate(booster, resamples=RESAMPLES),
        "lightgbm": suite.evaluate(gbm, resamples=RESAMPLES),
        "statsmodels": suite.evaluate(
            _Columns(logit, columns), resamples=RESAMPLES, label="statsmodels"
        ),
    }
    for name, result in judged.items():
        assert result["roc_auc"].value == pytest.approx(expected[name], abs=1e-12), name
    assert judged["xgboost"].model == "xgboost.Booster"


class _Columns:
    """statsmodels results fitted on a few columns: a wrapper picks them (a plain object
    with predict, which any model may be)."""

    def __init__(self, results: Any, columns: list[str]) -> None:
        self.results, self.columns = results, columns

    def predict(self, X: pd.DataFrame) -> Any:
        import statsmodels.api as sm

        return self.results.predict(sm.add_constant(X[self.columns], has_constant="add"))


def test_string_labels_line_up_with_predict_proba_columns_in_any_order(suite: Any) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = suite.train()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)

    class Reversed:
        classes_ = np.array(["yes", "no"])

        def predict_proba(self, X: pd.DataFrame) -> Any:
            return model.predict_proba(X)[:, ::-1]

    straight = suite.evaluate(model, resamples=RESAMPLES)
    flipped = suite.evaluate(Reversed(), resamples=RESAMPLES)
    assert flipped["roc_auc"].value == pytest.approx(straight["roc_auc"].value, abs=1e-12)
    assert flipped["log_loss"].value == pytest.approx(straight["log_loss"].value, abs=1e-12)


def test_a_model_stored_by_a_run_is_judged_by_reference(suite: Any) -> None:
    from sklearn.tree import DecisionTreeClassifier

    @loopml.step
    def fit(depth: int) -> DecisionTreeClassifier:
        X, y = loopml.suite("cancer").train()
        return DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)

    @loopml.pipeline(name="trees")
    def trees(depth: int = 2) -> None:
        fit(depth)

    trees(depth=2)
    by_run = suite.evaluate("trees#1:fit", resamples=RESAMPLES)
    assert by_run.model == "trees#1:fit"
    run = Client().search_runs()[0]
    assert by_run.evaluation.run_id == run.id
    digest = by_run.evaluation.model_digest
    by_digest = suite.evaluate(digest[:12], resamples=RESAMPLES)
    assert by_digest.reused and by_digest.id == by_run.id


def test_the_notebook_display_has_tables_and_charts(suite: Any) -> None:
    from sklearn.naive_bayes import GaussianNB

    X, y = suite.train()
    result = suite.evaluate(GaussianNB().fit(X, y), resamples=RESAMPLES)
    html = result._repr_html_()
    tags = _Tags()
    tags.feed(html)
    assert tags.count["svg"] >= 4 and tags.count["table"] >= 1 and not tags.count["script"]
    assert "roc_auc" in html and "GaussianNB" in html
    board = suite.leaderboard()._repr_html_()
    assert "GaussianNB" in board and "<svg" in board
    assert repr(result).startswith(f"<EvaluationResult #{result.id} GaussianNB on cancer@1")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.count: dict[str, int] = {"svg": 0, "table": 0, "script": 0}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.count:
            self.count[tag] += 1
