"""A store with a served model, its logged predictions and a monitor over them.

``build_monitor_world(root)`` trains a LogisticRegression on sklearn's breast-cancer data
inside a run (so the version records its training dataset, the monitor's reference), promotes
it to ``production`` and logs ``HOURS`` hourly windows of 300 predictions each, ending at the
last full hour before now. From window ``SHIFT_FROM`` on, ``mean_radius`` is moved by three
training standard deviations: the drift a monitor must find. The first ``LABELLED`` windows
get their labels back. Monitor ``live`` watches ``cancer@production`` in 1-hour windows from
the first window on (not evaluated yet: ``evaluate(world)`` does it).

Shared by the REST API tests (``tests/server``), R18 and the web UI tests (``tests/ui``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOURS = 8
SHIFT_FROM = 4
LABELLED = 2
ROWS = 300
DRIFTED = "mean_radius"


@dataclass
class MonitorWorld:
    root: Path
    client: Any
    t0: float  # the first window's start
    tokens: dict[str, str] = field(default_factory=dict)  # role -> secret

    @property
    def end(self) -> float:
        """The end of the last logged window."""
        return self.t0 + HOURS * 3600


def build_monitor_world(root: Path, *, monitors: tuple[str, ...] = ("live",)) -> MonitorWorld:
    """A project at ``root`` with the model, its predictions, ``monitors`` and three tokens."""
    from loopml.config import load_settings
    from loopml.tracking.client import Client

    root.mkdir(parents=True, exist_ok=True)
    (root / "loopml.toml").write_text('[project]\nname = "monitored"\n')
    client = Client(load_settings(root), readonly=False).open()
    world = MonitorWorld(root=root, client=client, t0=fill(client, monitors=monitors))
    for role in ("reader", "writer", "admin"):
        world.tokens[role] = client.metadata.tokens.create(f"mon-{role}", role, by="tests")[1]
    return world


def train_cancer(client: Any) -> tuple[Any, Any, Any]:
    """``(model, train, test)``: a logistic regression trained in a run on dataset
    ``cancer@1`` (70 % of the breast-cancer rows), registered and promoted to production."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    import loopml
    from loopml.registry.promotion import promote

    frame = load_breast_cancer(as_frame=True).frame
    frame = frame.rename(columns=lambda c: c.replace(" ", "_"))
    train = frame.sample(frac=0.7, random_state=0)
    test = frame.drop(train.index)
    loopml.add_dataset(train, name="cancer", client=client)
    with client.start_run("train"):
        reference = loopml.dataset("cancer@1").frame(client)
        X, y = reference.drop(columns="target"), reference["target"]
        model = LogisticRegression(max_iter=5000).fit(X, y)
        loopml.register("cancer", model, client=client)
    promote("cancer", 1, to="production", client=client)
    return model, train, test


def log_windows(
    client: Any,
    model: Any,
    train: Any,
    test: Any,
    *,
    t0: float,
    windows: int = HOURS,
    shift_from: int = SHIFT_FROM,
    labelled: int = LABELLED,
    latency: bool = False,
) -> dict[int, list[str]]:
    """Log ``windows`` hourly windows of ``ROWS`` predictions from ``t0``; from window
    ``shift_from`` on ``mean_radius`` moves by three training standard deviations; the first
    ``labelled`` windows get their labels; ``latency`` gives each row 2.0 … 11.9 ms.
    Returns the prediction ids of each window."""
    from loopml.store.predictions import PredictionRow

    rows, feedback, ids = [], [], {}
    for w in range(windows):
        sample = test.sample(ROWS, replace=True, random_state=w)
        inputs = sample.drop(columns="target").copy()
        if w >= shift_from:
            inputs[DRIFTED] = inputs[DRIFTED] + 3 * train[DRIFTED].std()
        proba = model.predict_proba(inputs)
        ids[w] = []
        for i, record in enumerate(inputs.to_dict(orient="records")):
            pid = f"w{w}-{i}"
            ids[w].append(pid)
            output = {"prediction": int(proba[i, 1] >= 0.5), "probabilities": list(proba[i])}
            rows.append(
                PredictionRow(
                    pid,
                    "cancer",
                    1,
                    "cancer@production",
                    t0 + w * 3600 + i,
                    json.dumps(record),
                    json.dumps(output),
                    latency_ms=2.0 + (i % 100) / 10 if latency else None,
                )
            )
            if w < labelled:
                feedback.append((pid, json.dumps(int(sample["target"].iloc[i])), time.time()))
    client.metadata.predictions.add(rows)
    client.metadata.predictions.add_feedback(feedback)
    return ids


def fill(client: Any, *, monitors: tuple[str, ...] = ("live",)) -> float:
    """Train, register, promote, log the predictions and add ``monitors`` in ``client``'s
    store; returns the first window's start."""
    from loopml.monitoring import add_monitor

    model, train, test = train_cancer(client)
    t0 = (time.time() // 3600) * 3600 - HOURS * 3600
    log_windows(client, model, train, test, t0=t0)
    for name in monitors:
        add_monitor(name, model="cancer@production", window="1h", start=t0, client=client)
    return t0


def evaluate(world: MonitorWorld, name: str = "live") -> Any:
    """Evaluate the logged windows of monitor ``name`` (the library, as `loopml monitor run`)."""
    from loopml.monitoring import run_monitor

    return run_monitor(name, until=world.end, client=world.client)
