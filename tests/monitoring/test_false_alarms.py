"""How often the default rules cry wolf: windows with no drift at all must not alert.

Two measures on statsmodels' bundled "fair" survey, reference = the model's training data
(4,000 rows), 60 windows of 400 logged predictions each, under ``DEFAULT_RULES``:

- windows drawn from the reference itself (what the issue asks for);
- windows drawn from the 2,366 rows held out of training (same population, other people:
  what a healthy production model sees).

The rates are written to ``build/test-artifacts/monitoring/false_alarms.json`` (and printed)
for the issue's note; the test fails if either passes 5 % of windows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

import loopml
import loopml.monitoring as mon
from loopml.monitoring.summary import drifted
from loopml.registry.promotion import promote
from loopml.store.predictions import PredictionRow
from loopml.tracking.client import Client

WINDOWS = 60
ROWS = 400
T0 = 1_700_000_000 // 3600 * 3600
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "monitoring"


def _log(client: Client, model: object, frames: list[pd.DataFrame], prefix: str) -> None:
    rows = []
    for w, frame in enumerate(frames):
        X = frame.drop(columns="affair")
        p = model.predict_proba(X)  # type: ignore[attr-defined]
        for i, record in enumerate(X.to_dict(orient="records")):
            rows.append(
                PredictionRow(
                    f"{prefix}{w}-{i}",
                    "fair",
                    1,
                    "fair@production",
                    T0 + w * 3600 + i,
                    json.dumps(record),
                    json.dumps({"prediction": int(p[i, 1] >= 0.5), "probabilities": list(p[i])}),
                )
            )
    client.metadata.predictions.add(rows)


def test_the_default_rules_rarely_alert_on_windows_without_drift(project: Path) -> None:
    import statsmodels.api as sm
    from sklearn.linear_model import LogisticRegression

    frame = sm.datasets.fair.load_pandas().data
    frame["affair"] = (frame.pop("affairs") > 0).astype(int)
    train = frame.sample(n=4000, random_state=0)
    holdout = frame.drop(train.index)
    loopml.add_dataset(train, name="fair")
    with loopml.start_run("train"):
        seen = loopml.dataset("fair@1").frame()
        model = LogisticRegression(max_iter=5000).fit(seen.drop(columns="affair"), seen["affair"])
        loopml.register("fair", model)
    promote("fair", 1, to="production")
    client = Client().open()

    rates = {}
    for source, pool in (("reference", train), ("holdout", holdout)):
        client.metadata.predictions.db.write(lambda tx: tx.execute("DELETE FROM predictions"))
        _log(client, model, [pool.sample(ROWS, random_state=k) for k in range(WINDOWS)], source)
        name = f"quiet-{source}"
        mon.add_monitor(name, model="fair@production", window="1h", start=T0)
        started = time.perf_counter()
        report = mon.run_monitor(name, until=T0 + WINDOWS * 3600)
        elapsed = time.perf_counter() - started
        assert len(report.evaluated) == WINDOWS
        assert all(w.rows == ROWS for w in report.evaluated)
        alerted = {a.window_start for a in report.alerts}
        rates[source] = {
            "windows": WINDOWS,
            "rows_per_window": ROWS,
            "windows_with_an_alert": len(alerted),
            "false_alarm_rate": len(alerted) / WINDOWS,
            "alerts": sorted({a.rule for a in report.alerts}),
            "flagged_windows": sum(1 for w in report.evaluated if w.stats["flagged"]),
            # For comparison: windows where loopml.data.drift's Evidently-style verdict (normed
            # Wasserstein > 0.1 with this reference size) calls any feature drifted.
            "drift_verdict_windows": sum(1 for w in report.evaluated if drifted(w.stats)),
            "evaluation_seconds": round(elapsed, 2),
        }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "false_alarms.json").write_text(json.dumps(rates, indent=2))
    print(json.dumps(rates, indent=2))
    for source, found in rates.items():
        assert found["false_alarm_rate"] <= 0.05, (source, found)
