"""What alerts do, and what happens when the process doing it dies or the receiver fails.

The store has six hourly windows of a served classifier (see conftest.py); from window 3
``mean_radius`` drifts. Webhooks go to a real HTTP server on loopback.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from monitor_world import DRIFT_FROM, T0, WINDOWS, Watched

import loopml.monitoring as mon
from loopml.errors import InvalidParameterError, NotFoundError
from loopml.monitoring.engine import LEASE_S
from loopml.tracking.client import Client

END = T0 + WINDOWS * 3600
RULES = """
[rules]
radius = 'psi("mean_radius") > 0.25'
"""


class Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        Receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Receiver.bodies, Receiver.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def _rules(root: Path, text: str = RULES) -> str:
    (root / "rules.toml").write_text(text)
    return str(root / "rules.toml")


def test_each_drifted_window_alerts_once_and_the_webhook_gets_one_message_each(
    watched: Watched, hook: str
) -> None:
    mon.add_monitor(
        "m", model="cancer@production", window="1h", start=T0, rules=_rules(watched.root),
        notify=[hook],
    )  # fmt: skip
    first = mon.run_monitor("m", until=END)
    assert [a.window_start for a in sorted(first.alerts, key=lambda a: a.window_start)] == [
        T0 + k * 3600 for k in range(DRIFT_FROM, WINDOWS)
    ]
    assert len(Receiver.bodies) == WINDOWS - DRIFT_FROM
    body = Receiver.bodies[0]
    assert body["loopml"]["monitor"] == "m" and body["loopml"]["rule"] == "radius"
    assert "mean_radius" in body["text"] and body["blocks"][0]["type"] == "section"
    again = mon.run_monitor("m", until=END)
    assert again.evaluated == [] and again.alerts == [] and again.up_to_date == WINDOWS
    assert len(Receiver.bodies) == WINDOWS - DRIFT_FROM
    assert all(a.acted_at is not None and a.notified_at for a in mon.alerts("m"))


def test_a_failing_webhook_is_recorded_on_the_alert_and_not_retried_for_ever(
    watched: Watched, hook: str
) -> None:
    Receiver.status = 400
    mon.add_monitor(
        "m", model="cancer@production", window="1h", start=T0, rules=_rules(watched.root),
        notify=[hook],
    )  # fmt: skip
    report = mon.run_monitor("m", until=END)
    assert report.alerts
    assert any("webhook failed" in line and "HTTP 400" in line for line in report.actions)
    assert len(Receiver.bodies) == len(report.alerts)  # a 400 is not tried again
    alert = mon.alerts("m")[0]
    assert alert.notified_at is None and "HTTP 400" in (alert.notify_error or "")


def test_an_alert_whose_owner_died_before_acting_is_taken_over_once_its_lease_ran_out(
    watched: Watched, hook: str
) -> None:
    mon.add_monitor(
        "m", model="cancer@production", window="1h", start=T0, rules=_rules(watched.root),
        notify=[hook],
    )  # fmt: skip
    client = Client().open()
    store = client.metadata.monitors
    import time

    # A process recorded this alert, then died (kill -9) before sending anything.
    dead = store.fire(
        "m", "radius", (T0, T0 + 3600), value=9.0, message="by a process that died",
        owner="dead-host:1/abc", now=time.time(), lease_s=LEASE_S,
    )  # fmt: skip
    assert dead is not None
    mon.run_monitor("m", until=T0)  # its lease still holds: nobody else acts on it
    assert Receiver.bodies == []
    store.update_alert(dead.id, "dead-host:1/abc", lease_until=0.0)  # the lease runs out
    mon.run_monitor("m", until=T0)
    assert [b["loopml"]["alert"] for b in Receiver.bodies] == [dead.id]
    taken = store.alert(dead.id)
    assert taken.acted_at is not None and taken.owner != "dead-host:1/abc"
    mon.run_monitor("m", until=T0)
    assert len(Receiver.bodies) == 1


def test_a_paused_monitor_evaluates_nothing_until_resumed(watched: Watched) -> None:
    mon.add_monitor("m", model="cancer@production", window="1h", start=T0)
    mon.set_paused("m", True)
    assert mon.run_monitor("m", until=END).paused
    assert mon.windows("m") == [] and mon.list_monitors()[0].status == "paused"
    mon.set_paused("m", False)
    assert len(mon.run_monitor("m", until=END).evaluated) == WINDOWS


def test_late_labels_update_the_old_window_and_only_it(watched: Watched) -> None:
    mon.add_monitor("m", model="cancer@production", window="1h", start=T0)
    mon.run_monitor("m", until=END)
    assert "live" not in mon.windows("m")[0].stats["performance"]
    labels = watched.live.sample(300, replace=True, random_state=0)["target"].tolist()
    client = Client().open()
    client.metadata.predictions.add_feedback(
        [(pid, json.dumps(int(y)), 0.0) for pid, y in zip(watched.ids[0], labels, strict=True)]
    )
    report = mon.run_monitor("m", until=END)
    assert [w.start for w in report.evaluated] == [T0]
    live = mon.windows("m")[0].stats["performance"]["live"]
    assert live["labels"] == 300 and live["metrics"]["accuracy"] > 0.9
    assert live["metrics"]["roc_auc"] > 0.95
    estimated = mon.windows("m")[0].stats["performance"]["estimated"]
    assert estimated["calibrated"]  # the reference has the label: calibrated on it
    assert abs(estimated["metrics"]["accuracy"]["value"] - live["metrics"]["accuracy"]) < 0.05


def test_bad_definitions_are_refused_before_anything_is_stored(watched: Watched) -> None:
    root = watched.root
    bad_rules = root / "bad.toml"
    bad_rules.write_text('[rules]\nok = "rows < 10"\n\nauc = "roc_acu < 0.7"\n')
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"model": "cancer@production", "window": "0s"}, InvalidParameterError, "above 0"),
        ({"model": "cancer@production", "window": "1h", "every": "2h"}, InvalidParameterError, "gaps"),
        ({"model": "cancer@3"}, InvalidParameterError, "watches what an alias serves"),
        ({"model": "cancr@production"}, NotFoundError, "Did you mean 'cancer'"),
        ({"model": "cancer@staging"}, InvalidParameterError, "points at no version"),
        ({"model": "cancer@production", "reference": "cancer@9"}, NotFoundError, "cancer@9"),
        ({"model": "cancer@production", "reference": "yesterday"}, InvalidParameterError, "'previous'"),
        ({"model": "cancer@production", "rules": str(bad_rules)}, InvalidParameterError, "line 4: rule 'auc'"),
        ({"model": "cancer@production", "notify": ["file:///etc/passwd"]}, InvalidParameterError, "http://"),
        ({"model": "cancer@production", "auto_promote": True}, InvalidParameterError, "retrain:PIPELINE"),
    ]  # fmt: skip
    for kwargs, error, words in cases:
        with pytest.raises(error) as caught:
            mon.add_monitor("m", **kwargs)
        assert words in str(caught.value), (kwargs, str(caught.value))
    (root / "latin1.toml").write_bytes(b'[rules]\nx = "rows < 1" # caf\xe9\n')
    with pytest.raises(InvalidParameterError, match="not UTF-8"):
        mon.add_monitor("m", model="cancer@production", rules=str(root / "latin1.toml"))
    with pytest.raises(InvalidParameterError, match="Monitor name"):
        mon.add_monitor("../etc", model="cancer@production")
    assert mon.list_monitors() == []
