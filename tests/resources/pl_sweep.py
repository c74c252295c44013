"""Pipelines for sweep tests: a toy quadratic, a step that sleeps, one that fails on demand."""

from __future__ import annotations

import time

import loopml
from loopml import pipeline, step


@step
def quadratic(x: float, depth: int) -> float:
    loss = (x - 0.7) ** 2 + depth
    loopml.log_metric("loss", loss)
    loopml.log_metric("score", -loss)
    return loss


@pipeline
def quad(x: float = 0.0, depth: int = 0):
    quadratic(x, depth)


@step
def nap(seconds: float, tag: str) -> str:
    time.sleep(seconds)
    if tag == "fail":
        raise ValueError("asked to fail")
    loopml.log_metric("length", float(len(tag)))
    return tag


@pipeline
def sleepy(seconds: float = 0.0, tag: str = "a"):
    nap(seconds, tag)
