"""A small user-style pipeline: load -> split (NamedTuple outputs) -> fit, plus a side branch.

``fit`` logs metrics with ``loopml.log_metric``; ``describe`` is an independent branch
that reads the loaded data, so changing ``alpha`` must not re-run it.
"""

from __future__ import annotations

from typing import NamedTuple

import loopml
from loopml import pipeline, step


class Split(NamedTuple):
    train: list[int]
    test: list[int]


@step
def load(n: int) -> list[int]:
    print(f"loading {n} rows")
    return list(range(n))


@step
def split(data: list[int]) -> Split:
    half = len(data) // 2
    return Split(data[:half], data[half:])


@step
def fit(train: list[int], alpha: float) -> float:
    loss = alpha * sum(train)
    for i in range(3):
        loopml.log_metric("loss", loss / (i + 1))
    loopml.log_metric("auc", 0.95)
    return loss


@step
def evaluate(model: float, test: list[int]) -> dict[str, float]:
    score = model / (1 + sum(test))
    loopml.log_metric("score", score)
    return {"score": score}


@step
def describe(data: list[int]) -> dict[str, int]:
    return {"rows": len(data)}


@pipeline
def train(n: int = 10, alpha: float = 0.5):
    data = load(n)
    parts = split(data)
    model = fit(parts.train, alpha)
    describe(data)
    return evaluate(model, parts.test)
