"""Stores for the Prometheus and Grafana tests: a real monitored model, and synthetic monitors.

``cancer_world(client)``: scikit-learn's breast cancer data, a logistic regression trained
in a run on a dataset version, registered and promoted to production; eight hourly windows
of 300 logged predictions each, the first two with labels, and from the fifth on
``mean_radius`` shifted by three standard deviations, each with a request latency of 2.0 to
11.9 ms; a monitor ``live`` over them with the default rules, evaluated up to the end of
the eighth window.

``synthetic_monitors(client, ...)``: monitors written straight to the store with windows of
a chosen shape (features, classes, non-finite numbers), no model needed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

#: The first window's start: an hour boundary in November 2023.
T0 = 1_700_000_000 // 3600 * 3600
WINDOWS = 8
SHIFTED_FROM = 4
ROWS = 300


@dataclass(frozen=True)
class World:
    model: Any
    features: list[str]
    test_frame: Any  # the held-out rows (inputs and target)
    alerts: list[Any]


def cancer_world(client: Any) -> World:
    import loopml.monitoring as mon
    from monitored_store import log_windows, train_cancer

    model, train, test = train_cancer(client)
    log_windows(
        client, model, train, test, t0=T0, windows=WINDOWS, shift_from=SHIFTED_FROM, latency=True
    )
    mon.add_monitor("live", model="cancer@production", window="1h", start=T0, client=client)
    run = mon.run_monitor("live", until=T0 + WINDOWS * 3600, client=client)
    assert len(run.evaluated) == WINDOWS
    return World(model, [c for c in test.columns if c != "target"], test, run.alerts)


def stats(
    features: list[str],
    *,
    drifted: dict[str, float] | None = None,
    classes: int = 2,
    psi: Any = 0.01,
    live: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Window statistics of the engine's shape; ``drifted`` maps features to their PSI."""
    drifted = drifted or {}
    columns = [
        {
            "column": f,
            "drifted": f in drifted,
            "kind": "numeric",
            "method": "ks_pvalue",
            "score": 0.5,
            "statistics": {"psi": drifted.get(f, psi), "ks": 0.05, "ks_pvalue": 0.5},
            "histogram": {"edges": list(range(21)), "reference": [5] * 20, "current": [5] * 20},
        }
        for f in features
    ]
    columns.sort(key=lambda c: not c["drifted"])  # the report lists the worst first
    share = 1 / classes
    return {
        "rows": 100,
        "features": features,
        "drift": {"columns": columns, "format": 1},
        "quality": {
            f: {"missing": 0.0, "out_of_range": 0.0, "missing_reference": 0.0} for f in features
        },
        "prediction": {
            "shares": {f"c{i}": share for i in range(classes)},
            "reference_shares": {f"c{i}": share for i in range(classes)},
            "quantiles": {"0.5": 0.5},
            "mean": 0.5,
        },
        "performance": {
            "live": {"labels": 100, "metrics": live or {"accuracy": 0.9}},
            "estimated": {
                "calibrated": True,
                "rows": 100,
                "metrics": {"accuracy": {"value": 0.91, "low": 0.88, "high": 0.94}},
            },
        },
    }


def synthetic_monitors(
    client: Any, count: int, window_stats: dict[str, Any], *, windows: int = 3
) -> list[str]:
    """``count`` monitors ``m00``… with ``windows`` hourly windows of ``window_stats`` each."""
    from loopml.store.monitors import MonitorRecord, WindowRecord

    names = []
    for k in range(count):
        name = f"m{k:02d}"
        client.metadata.monitors.add(
            MonitorRecord(
                name=name,
                model=f"model{k}@production",
                reference="training",
                window_s=3600.0,
                every_s=3600.0,
                origin=float(T0),
                rules="",
            )
        )
        for w in range(windows):
            start = float(T0 + w * 3600)
            client.metadata.monitors.save_window(
                WindowRecord(name, start, start + 3600, 100 + w, w, window_stats, time.time())
            )
        names.append(name)
    return names


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[Samples, set[str]]:
    """``({(sample name, sorted labels): value}, {family names and sample names})``."""
    samples: Samples = {}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        for s in family.samples:
            names.add(s.name)
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, names


def series(samples: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of ``name`` whose labels include ``labels``."""
    return {
        key: value
        for (sample, key), value in samples.items()
        if sample == name and set(labels.items()) <= set(key)
    }
