"""Example pipeline: predict diabetes progression (scikit-learn's bundled data set)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

import loopml
from loopml import pipeline, step

if TYPE_CHECKING:  # scikit-learn takes ~1 s to import: only steps that run pay for it
    from sklearn.linear_model import Ridge

TARGET = "progression"


@step
def load() -> pd.DataFrame:
    """442 patients, 10 baseline measurements, disease progression one year later."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True)
    return data.frame.rename(columns={"target": TARGET})


@step
def split(df: pd.DataFrame, test_fraction: float = 0.25, seed: int = 0) -> str:
    """Freeze the split as an evaluation suite: every run, and any model, is judged on exactly
    the same test rows (`loopml leaderboard diabetes`). The same split again is the same suite."""
    suite, _ = loopml.create_suite(
        "diabetes",
        data=df,
        target=TARGET,
        task="regression",
        split=f"random:test={test_fraction},seed={seed}",
    )
    return suite.label


@step
def train(suite: str, alpha: float = 1.0) -> Ridge:
    from sklearn.linear_model import Ridge

    X, y = loopml.suite(suite).train()  # the training rows only: test rows never reach here
    return Ridge(alpha=alpha).fit(X, y)


@step
def evaluate(model: Ridge, suite: str) -> dict[str, float]:
    """RMSE, MAE, R² and MAPE with 95 % bootstrap intervals, logged to the run as
    ``diabetes.rmse``, ``diabetes.rmse.low``, …; the plain values as ``rmse``, …"""
    judged = loopml.suite(suite)
    result = judged.evaluate(model)
    metrics = {name: figure.value for name, figure in result.metrics.items()}
    loopml.log_metrics(metrics)
    # The next version of the model `diabetes` (`loopml models show diabetes`), with this run's
    # metrics and the training data's schema; `loopml promote diabetes N --to production`.
    loopml.register("diabetes", model, X=judged.train()[0])
    return metrics


@pipeline(name="train")
def train_pipeline(alpha: float = 1.0, test_fraction: float = 0.25, seed: int = 0) -> None:
    suite = split(load(), test_fraction=test_fraction, seed=seed)
    model = train(suite, alpha=alpha)
    evaluate(model, suite)
