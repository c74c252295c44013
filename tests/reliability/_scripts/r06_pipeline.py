"""R06 pipeline: five chained steps that sleep, log metrics and store artifacts.

Copied into each test project as ``pipelines.py``. ``raw`` writes one large blob
(``R06_BLOB_MB``, 20 MB in CI; the plan's 200 MB does not fit the 2-core CI budget).
Every output is a deterministic function of ``seed``, so a re-run stores identical
digests and can reuse what a killed run completed.
"""

from __future__ import annotations

import hashlib
import os
import random
import time

import loopml
from loopml import pipeline, step

BLOB_MB = float(os.environ.get("R06_BLOB_MB", "20"))
NAP_S = float(os.environ.get("R06_NAP_S", "0.1"))


@step
def raw(seed: int) -> bytes:
    time.sleep(NAP_S)
    data = random.Random(seed).randbytes(int(BLOB_MB * 2**20))
    loopml.log_metric("raw_mb", len(data) / 2**20)
    return data


@step
def features(data: bytes) -> dict:
    time.sleep(NAP_S)
    summary = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "first": list(data[:16]),
    }
    loopml.log_metric("feature_count", len(summary["first"]))
    return summary


@step
def train(summary: dict, seed: int) -> dict:
    rng = random.Random(seed)
    weights = [rng.random() for _ in range(256)]
    for epoch in range(20):
        loopml.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        time.sleep(NAP_S / 20)
    loopml.log_artifact({"epochs": 20, "seed": seed}, "train_config")
    return {"weights": weights, "source": summary["sha256"]}


@step
def evaluate(model: dict) -> dict:
    time.sleep(NAP_S)
    score = sum(model["weights"]) / len(model["weights"])
    loopml.log_metric("score", score)
    return {"score": score}


@step
def report(scores: dict) -> str:
    time.sleep(NAP_S)
    loopml.log_metric("reported", 1.0)
    return f"score={scores['score']:.6f}\n"


@pipeline
def r06(seed: int = 0) -> None:
    report(evaluate(train(features(raw(seed)), seed=seed)))
