"""A served-model history to monitor, built without a server (fast): shared by the
monitoring tests through ``conftest.py``'s ``watched`` fixture.

``watched`` registers a logistic regression on scikit-learn's breast-cancer data inside a
run that read dataset ``cancer@1`` (so its training data is known), promotes it to
``production`` and logs ``WINDOWS`` hourly windows of 300 predictions starting at ``T0``;
from window ``DRIFT_FROM`` on, ``mean_radius`` is shifted by three standard deviations.
"""

from __future__ import annotations

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


def build(project: Path) -> Watched:
    from loopml.tracking.client import Client
    from monitored_store import log_windows, train_cancer

    client = Client().open()
    model, train, live = train_cancer(client)
    ids = log_windows(
        client, model, train, live, t0=T0, windows=WINDOWS, shift_from=DRIFT_FROM, labelled=0
    )
    return Watched(project, model, train, live, ids)
