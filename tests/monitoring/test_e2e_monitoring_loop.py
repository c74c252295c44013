"""The whole loop, for real: serve → traffic that drifts in one feature → two schedulers
evaluate the monitor → one alert per rule and window, the webhook, one retrain run → the
retrained version passes the gates and is served without a restart; late labels update
the old windows.

Data: statsmodels' bundled "fair" survey (6,366 rows; label: any affair). The model is a
logistic regression trained by the project's own ``train`` pipeline on dataset ``fair@1``
(4,000 rows); traffic is drawn from the other 2,366 rows, 400 per window; from window 4
on, ``age`` is ten years older — and nothing else changes.

Windows are real time (4 s each): the traffic of window k is sent once the clock is in
window k, and the test checks afterwards that every window got exactly its 400 rows.
Every other wait polls the store or an event with a generous deadline.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cli_runner import run_cli
from loopml.store.status import RunStatus
from loopml.tracking.client import Client

WINDOW_S = 4.0
ROWS = 400
WINDOWS = 8
DRIFT_FROM = 4

PIPELINES = """
from __future__ import annotations

from pathlib import Path

import pandas as pd

import loopml
from loopml import dataset, pipeline, step


@step(register="fair")
def fit(data: Path, window: str) -> object:
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_parquet(data) if str(data).endswith(".parquet") else pd.read_csv(data)
    X, y = frame.drop(columns="affair"), frame["affair"]
    model = LogisticRegression(max_iter=5000).fit(X, y)
    loopml.log_metric("train_accuracy", float(model.score(X, y)))
    return model


@pipeline
def train(window: str = ""):
    return fit(data=dataset("fair@latest"), window=window)
"""

GATES = """
def good_enough(version):
    return version.metrics.get("train_accuracy", 0.0) >= 0.6
"""

CONFIG = """
[project]
name = "fair"
pipelines = ["pipelines"]

[models.fair.gates.production]
checks = ["gates:good_enough"]
"""

RULES = """
[settings]
min_rows = 100
min_labels = 50

[rules]
feature_drift = "psi(*) > 0.25 for 2 windows"

[rules.low_accuracy]
rule = "accuracy < 0.5 when labels >= 100"
actions = ["notify"]
"""


def _until(what: str, check: Callable[[], Any], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    arrived = threading.Event()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        Hook.arrived.set()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Hook.received = []
    Hook.arrived = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def fair() -> tuple[pd.DataFrame, pd.DataFrame]:
    import statsmodels.api as sm

    frame = sm.datasets.fair.load_pandas().data
    frame["affair"] = (frame.pop("affairs") > 0).astype(int)
    train = frame.sample(n=4000, random_state=0)
    return train, frame.drop(train.index)


def _post(url: str, body: Any) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        result: dict[str, Any] = json.loads(answer.read())
        return result


def _serve(project: Path) -> tuple[subprocess.Popen[str], str]:
    exe = Path(sys.executable).parent / "loopml"
    proc = subprocess.Popen(
        [str(exe), "serve", "fair@production", "--port", "0", "--follow-seconds", "0.3"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Serving on" in line:
            url = line.split("Serving on", 1)[1].split()[0].rstrip(".")
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
            return proc, url
    raise AssertionError(f"loopml serve exited with {proc.wait()}")


def _scheduler(project: Path) -> subprocess.Popen[str]:
    exe = Path(sys.executable).parent / "loopml"
    return subprocess.Popen(
        [str(exe), "scheduler", "--tick", "0.2", "--monitor-every", "0.5"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def test_drift_in_one_feature_alerts_once_retrains_once_and_the_new_version_is_served(
    project: Path, webhook: str
) -> None:
    import loopml

    (project / "loopml.toml").write_text(CONFIG)
    (project / "pipelines.py").write_text(PIPELINES)
    (project / "gates.py").write_text(GATES)
    (project / "rules.toml").write_text(RULES)
    train, holdout = fair()
    loopml.add_dataset(train, name="fair")
    trained = run_cli("run", "train", cwd=project, timeout=300)
    assert trained.returncode == 0, trained.stderr
    promoted = run_cli("promote", "fair", "1", "--to", "production", cwd=project)
    assert promoted.returncode == 0, promoted.stderr
    client = Client().open()
    assert client.model_version("fair@1").datasets == ("fair@1",)

    served, url = _serve(project)
    schedulers: list[subprocess.Popen[str]] = []
    try:
        start = (math.floor(time.time() / WINDOW_S) + 1) * WINDOW_S
        added = run_cli(
            "monitor", "add", "fair-live", "--model", "fair@production", "--window", "4s",
            "--rules", "rules.toml", "--on-alert", "retrain:train", "--notify", webhook,
            "--auto-promote", "--from", _iso(start), cwd=project,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        features = [c for c in holdout.columns if c != "affair"]
        ids: dict[int, list[str]] = {}
        truth: dict[int, list[int]] = {}
        for k in range(WINDOWS):
            opens = start + k * WINDOW_S
            time.sleep(max(0.0, opens + 0.05 - time.time()))  # windows are wall-clock time
            sample = holdout.sample(ROWS, random_state=k)
            X = sample[features].copy()
            if k >= DRIFT_FROM:
                X["age"] = X["age"] + 10
            answer = _post(f"{url}/predict", {"records": X.to_dict(orient="records")})
            assert answer["version"] == 1
            ids[k], truth[k] = answer["prediction_ids"], sample["affair"].tolist()
        # The retrain reads fair@latest: the new normal, older customers, is its data.
        newer = holdout.copy()
        newer["age"] = newer["age"] + 10
        loopml.add_dataset(pd.concat([train.assign(age=train["age"] + 10), newer]), name="fair")
        time.sleep(max(0.0, start + WINDOWS * WINDOW_S + 0.05 - time.time()))
        for k in range(WINDOWS):
            opens = start + k * WINDOW_S
            counted = client.metadata.predictions.window_counts("fair", opens, opens + WINDOW_S)
            assert counted == (ROWS, 0), f"window {k} got {counted} (traffic spilled over)"

        schedulers = [_scheduler(project), _scheduler(project)]
        store = client.metadata.monitors
        _until(
            f"{WINDOWS} evaluated windows",
            lambda: len(store.windows("fair-live", until=start + WINDOWS * WINDOW_S)) == WINDOWS,
        )
        windows = store.windows("fair-live", until=start + WINDOWS * WINDOW_S)
        for k, w in enumerate(windows):
            flagged = sorted(w.stats["flagged"])
            assert flagged == (["age"] if k >= DRIFT_FROM else []), (k, w.stats["flagged"])
            psi = {c["column"]: c["statistics"]["psi"] for c in w.stats["drift"]["columns"]}
            assert max(v for f, v in psi.items() if f != "age") < 0.25, (k, psi)
        assert (
            min(psi for psi in [windows[-1].stats["drift"]["columns"][0]["statistics"]["psi"]]) > 1
        )

        # One alert per rule and window, from window 5 on (the rule wants 2 windows in a row).
        def fired() -> list[Any]:
            return [a for a in store.alerts("fair-live") if a.rule == "feature_drift"]

        alerts = _until(
            "3 feature_drift alerts", lambda: len(fired()) >= WINDOWS - DRIFT_FROM - 1 and fired()
        )
        starts = sorted(a.window_start for a in alerts)
        assert starts == [start + k * WINDOW_S for k in range(DRIFT_FROM + 1, WINDOWS)]
        assert all("age" in a.message and "psi" in a.message for a in alerts)

        # The webhook got one Slack-compatible message per alert, and only one.
        _until("the webhook messages", lambda: len(Hook.received) >= len(alerts))
        assert sorted(m["loopml"]["window_start"] for m in Hook.received) == [
            _iso(s) for s in starts
        ]
        assert all(m["text"].startswith(":rotating_light:") and m["blocks"] for m in Hook.received)

        # One retrain run for the episode, however many windows and schedulers.
        def retrains() -> list[Any]:
            return client.search_runs("tags.monitor = 'fair-live'", limit=50)

        run = _until("the retrain run", retrains)[0]
        done = _until(
            "the retrain run to finish",
            lambda: (
                client.run_record(run.id).status != RunStatus.RUNNING and client.run_record(run.id)
            ),
        )
        assert done.status == RunStatus.SUCCEEDED, done.error
        assert done.params["window"].startswith(_iso(starts[0]))
        assert done.tags["monitor_rule"] == "feature_drift"

        # Auto-promotion through the gates, audited as the monitor; served without restart.
        _until("fair@2 in production", lambda: client.model_aliases("fair").get("production") == 2)
        event = client.alias_history("fair", "production")[-1]
        assert event.by == "monitor:fair-live" and event.to_number == 2 and not event.forced
        assert [g["passed"] for g in event.gates] == [True]
        sample = holdout.sample(5, random_state=99)[features]
        answered = _until(
            "the server to answer with version 2",
            lambda: (
                _post(f"{url}/predict", {"records": sample.to_dict(orient="records")})["version"]
                == 2
            ),
        )
        assert answered
        assert served.poll() is None  # the same process all along
        assert len(retrains()) == 1

        # Late labels: window 0 and 1 get their ground truth now; their live metrics follow.
        feedback = [
            {"prediction_id": pid, "label": label}
            for k in (0, 1)
            for pid, label in zip(ids[k], truth[k], strict=True)
        ]
        _post(f"{url}/feedback", feedback)
        _until(
            "the labelled windows to be evaluated again",
            lambda: [w.labels for w in store.windows("fair-live", limit=2)] == [ROWS, ROWS],
        )
        for w in store.windows("fair-live", limit=2):
            live = w.stats["performance"]["live"]
            assert live["labels"] == ROWS
            assert 0.6 < live["metrics"]["accuracy"] < 0.85
            estimated = w.stats["performance"]["estimated"]["metrics"]["accuracy"]
            assert abs(estimated["value"] - live["metrics"]["accuracy"]) < 0.1
        later = store.windows("fair-live", since=start + 2 * WINDOW_S, limit=1)[0]
        assert later.labels == 0 and "live" not in later.stats["performance"]
        assert len(fired()) == len(alerts)  # nothing fired twice
    finally:
        for proc in schedulers:
            proc.send_signal(signal.SIGTERM)
        for proc in schedulers:
            assert proc.wait(60) == 0
        served.send_signal(signal.SIGTERM)
        served.wait(60)
        assert served.stdout is not None
        served.stdout.close()

    shown = run_cli("monitor", "show", "fair-live", "--json", cwd=project)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert {a["rule"] for a in doc["alerts"]} == {"feature_drift"}
    assert sum(1 for a in doc["alerts"] if a["run_id"]) == 1
    assert any((a["promotion"] or {}).get("promoted") for a in doc["alerts"])
    report = project / "report.html"
    written = run_cli("monitor", "report", "fair-live", "--html", str(report), cwd=project)
    assert written.returncode == 0, written.stderr
    page = report.read_text()
    assert "<svg" in page and "feature_drift" in page and "age" in page
