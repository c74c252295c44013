"""Quickstart: classify iris flowers with scikit-learn's bundled data set (no download).

Run ``loopml run train`` in this folder: load, split, fit and evaluate run and log
accuracy and macro F1. Run it again and every step comes from the cache; with
``-p c=0.1`` only ``fit`` and ``evaluate`` run. ``loopml runs --sort -metrics.f1``
compares the runs.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

import loopml
from loopml import pipeline, step

TARGET = "species"


@step
def load() -> pd.DataFrame:
    """150 flowers, 4 measurements each, 3 species."""
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame.rename(columns={"target": TARGET})


class Split(NamedTuple):
    train: pd.DataFrame
    test: pd.DataFrame


@step
def split(df: pd.DataFrame, test_fraction: float = 0.3, seed: int = 0) -> Split:
    """A stratified split; the test rows are never seen by training."""
    train, test = train_test_split(
        df, test_size=test_fraction, random_state=seed, stratify=df[TARGET]
    )
    return Split(train, test)


@step
def fit(train: pd.DataFrame, c: float = 1.0) -> LogisticRegression:
    model = LogisticRegression(C=c, max_iter=1000)
    model.fit(train.drop(columns=TARGET), train[TARGET])
    return model


@step
def evaluate(model: LogisticRegression, test: pd.DataFrame) -> dict[str, float]:
    predicted = model.predict(test.drop(columns=TARGET))
    metrics = {
        "accuracy": float(accuracy_score(test[TARGET], predicted)),
        "f1": float(f1_score(test[TARGET], predicted, average="macro")),
    }
    loopml.log_metrics(metrics)
    return metrics


@pipeline(name="train")
def train_pipeline(c: float = 1.0, test_fraction: float = 0.3, seed: int = 0):
    parts = split(load(), test_fraction=test_fraction, seed=seed)
    model = fit(parts.train, c=c)
    return evaluate(model, parts.test)
