"""Steps importable by name, so a spawned worker process can run them."""

from __future__ import annotations

import os

import loopml
from loopml import pipeline, step


@step
def numbers(n: int) -> list[int]:
    return list(range(n))


@step
def total(values: list[int]) -> dict[str, int]:
    loopml.log_metric("total", float(sum(values)))
    return {"total": sum(values), "pid": os.getpid()}


@pipeline
def remote_sum(n: int = 5):
    return total(numbers(n))
