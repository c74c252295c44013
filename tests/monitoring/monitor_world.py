"""A served-model history to monitor, built without a server (fast): shared by the
monitoring tests through ``conftest.py``'s ``watched`` fixture.

``watched`` registers a logistic regression on scikit-learn's breast-cancer data inside a
run that read dataset ``cancer@1`` (so its training data is known), promotes it to
``production`` and logs ``WINDOWS`` hourly windows of 300 predictions starting at ``T0``;
from window ``DRIFT_FROM`` on, ``mean_radius`` is shifted by three standard deviations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

T0 = 1_700_000_000 // 3600 * 3600
WINDOWS = 6
DRIFT_FROM = 3
ROWS = 300


@dataclass
class Watched:
    root: Path
    model: Any
    train: Any
    live: Any
    ids: dict[int, list[str]]


def log_windows(
    client: Any, model: Any, live: Any, train: Any, *, windows: int, drift_from: int
) -> dict[int, list[str]]:
    from loopml.store.predictions import PredictionRow

    rows, ids = [], {}
    for w in range(windows):
        sample = live.sample(ROWS, replace=True, random_state=w)
        X = sample.drop(columns="target").copy()
        if w >= drift_from:
            X["mean_radius"] = X["mean_radius"] + 3 * train["mean_radius"].std()
        p = model.predict_proba(X)
        ids[w] = []
        for i, record in enumerate(X.to_dict(orient="records")):
            pid = f"w{w}-{i}"
            ids[w].append(pid)
            output = {"prediction": int(p[i, 1] >= 0.5), "probabilities": list(p[i])}
            rows.append(
                PredictionRow(
                    pid,
                    "cancer",
                    1,
                    "cancer@production",
                    T0 + w * 3600 + i,
                    json.dumps(record),
                    json.dumps(output),
                )
            )
    client.metadata.predictions.add(rows)
    return ids


def build(project: Path) -> Watched:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    import loopml
    from loopml.registry.promotion import promote
    from loopml.tracking.client import Client

    data = load_breast_cancer(as_frame=True).frame
    data.columns = [c.replace(" ", "_") for c in data.columns]
    train = data.sample(frac=0.7, random_state=0)
    live = data.drop(train.index)
    loopml.add_dataset(train, name="cancer")
    with loopml.start_run("train"):
        seen = loopml.dataset("cancer@1").frame()
        model = LogisticRegression(max_iter=5000).fit(seen.drop(columns="target"), seen["target"])
        loopml.register("cancer", model)
    promote("cancer", 1, to="production")
    client = Client().open()
    ids = log_windows(client, model, live, train, windows=WINDOWS, drift_from=DRIFT_FROM)
    return Watched(project, model, train, live, ids)
