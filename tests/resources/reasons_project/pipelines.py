"""A user's project: ``train`` (load -> prepare -> fit), ``report`` (a text parameter), a
step that never caches (``live``) and a flaky one (``retried``).

``prepare`` calls ``helpers.standardize`` from the project's own ``helpers.py``; ``flaky``
fails while a file named ``FAIL`` exists (a hard-coded path: not part of its cache key).
"""

from __future__ import annotations

import os
import time

import helpers

from loopml import pipeline, step


@step
def load(n: int) -> list[float]:
    return [float(i) for i in range(n)]


@step
def prepare(values: list[float]) -> list[float]:
    return helpers.standardize(values)


@step
def fit(values: list[float], alpha: float) -> float:
    return alpha * sum(v * v for v in values)


@step
def title(values: list[float], heading: str) -> str:
    return f"{heading}: {len(values)} values"


@step(cache=False)
def clock() -> float:
    return time.time()


@step
def flaky(n: int) -> int:
    if os.path.exists("FAIL"):
        raise RuntimeError("FAIL exists")
    return n


@pipeline
def train(n: int = 5, alpha: float = 0.5):
    return fit(prepare(load(n)), alpha)


@pipeline
def report(heading: str = "Report"):
    return title(load(3), heading)


@pipeline
def live():
    return clock()


@pipeline
def retried(n: int = 3):
    return flaky(n)
