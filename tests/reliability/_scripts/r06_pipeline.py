"""R06 pipeline: five chained steps that log metrics and store artifacts.

Copied into each test project as ``pipelines.py``. ``raw`` writes one large blob
(``R06_BLOB_MB``, 20 MB in CI; the plan's 200 MB does not fit the 2-core CI budget).
Every output is a deterministic function of ``seed``, so a re-run stores identical
digests and can reuse what a killed run completed.

The test kills on events, not on a clock. When ``R06_EVENTS_FD`` names the write end of
a pipe, each step announces itself on it (``"raw\\n"`` …) as it begins. With
``R06_HOLD=1`` the last step never returns, so the run cannot finish before the test
kills it: a kill, however late a busy machine lets it arrive, lands mid-run. A
``loopml run`` without these variables (the re-run) runs the same code to the end, and
the steps' cache keys are the same either way.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time

import loopml
from loopml import pipeline, step

BLOB_MB = float(os.environ.get("R06_BLOB_MB", "20"))
NAP_S = float(os.environ.get("R06_NAP_S", "0.02"))


def announce(event: str) -> None:
    """Write one line naming ``event`` to the test's pipe, if a test is listening."""
    fd = os.environ.get("R06_EVENTS_FD")
    if fd:
        os.write(int(fd), f"{event}\n".encode())


@step
def raw(seed: int) -> bytes:
    announce("raw")
    time.sleep(NAP_S)
    data = random.Random(seed).randbytes(int(BLOB_MB * 2**20))
    loopml.log_metric("raw_mb", len(data) / 2**20)
    return data


@step
def features(data: bytes) -> dict:
    announce("features")
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
    announce("train")
    rng = random.Random(seed)
    weights = [rng.random() for _ in range(256)]
    for epoch in range(20):
        loopml.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        time.sleep(NAP_S / 20)
    loopml.log_artifact({"epochs": 20, "seed": seed}, "train_config")
    return {"weights": weights, "source": summary["sha256"]}


@step
def evaluate(model: dict) -> dict:
    announce("evaluate")
    time.sleep(NAP_S)
    score = sum(model["weights"]) / len(model["weights"])
    loopml.log_metric("score", score)
    return {"score": score}


@step
def report(scores: dict) -> str:
    announce("report")
    time.sleep(NAP_S)
    loopml.log_metric("reported", 1.0)
    if os.environ.get("R06_HOLD") == "1":
        announce("holding")
        threading.Event().wait()  # until SIGKILL: this run never finishes
    return f"score={scores['score']:.6f}\n"


@pipeline
def r06(seed: int = 0) -> None:
    report(evaluate(train(features(raw(seed)), seed=seed)))
