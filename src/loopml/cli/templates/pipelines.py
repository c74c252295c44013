"""Example pipeline: predict diabetes progression (scikit-learn's bundled data set)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
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


class Split(NamedTuple):
    train: pd.DataFrame
    test: pd.DataFrame


@step
def split(df: pd.DataFrame, test_fraction: float = 0.25, seed: int = 0) -> Split:
    """A random split; the test rows are never seen by training."""
    test = df.sample(frac=test_fraction, random_state=seed)
    return Split(df.drop(test.index), test)


@step
def train(df: pd.DataFrame, alpha: float = 1.0) -> Ridge:
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=alpha)
    model.fit(df.drop(columns=TARGET), df[TARGET])
    return model


@step
def evaluate(model: Ridge, test: pd.DataFrame) -> dict[str, float]:
    predicted = model.predict(test.drop(columns=TARGET))
    error = predicted - test[TARGET].to_numpy()
    total = ((test[TARGET] - test[TARGET].mean()) ** 2).sum()
    metrics = {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(1 - (error**2).sum() / total),
    }
    loopml.log_metrics(metrics)
    return metrics


@pipeline(name="train")
def train_pipeline(alpha: float = 1.0, test_fraction: float = 0.25, seed: int = 0) -> None:
    parts = split(load(), test_fraction=test_fraction, seed=seed)
    model = train(parts.train, alpha=alpha)
    evaluate(model, parts.test)
