"""``GET /metrics`` of ``loopml server``: the monitors' gauges over real HTTP.

A real server (uvicorn on 127.0.0.1) over a store with a monitored model whose inputs
drift from the fifth window on; its /metrics text is parsed with prometheus_client's own
parser. Also: a reader token is needed with auth on, labels stay bounded, non-finite
statistics are exported as +Inf or left out, a store that cannot be read still answers, and
a scrape of 20 monitors of 50 features each stays cheap.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_world import (
    ROWS,
    T0,
    WINDOWS,
    cancer_world,
    parse,
    series,
    stats,
    synthetic_monitors,
)

import loopml.monitoring as mon
from loopml.errors import StoreUnavailableError
from loopml.monitoring.prometheus import MAX_CLASSES, MAX_FEATURES, MonitorCollector, registry
from loopml.server.app import create_app
from loopml.serving.server import serve_background

ROLES = ("reader", "writer", "admin")
LIVE = {"monitor": "live", "model": "cancer@production"}


def make_tokens(client: Any) -> dict[str, str]:
    """A secret per kind of caller: each role, a revoked admin and an expired admin."""
    tokens = client.metadata.tokens
    secrets = {role: tokens.create(f"p-{role}", role, by="test")[1] for role in ROLES}
    secrets["revoked"] = tokens.create("p-revoked", "admin", by="test")[1]
    tokens.revoke("p-revoked")
    secrets["expired"] = tokens.create("p-expired", "admin", by="test", expires_at=time.time() - 1)[
        1
    ]
    return secrets


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_scrape_shows_drift_alerts_and_performance_of_the_newest_window(client: Any) -> None:
    world = cancer_world(client)
    mon.add_monitor("idle", model="cancer@production", window="1d", client=client)
    mon.set_paused("idle", True, client=client)
    with serve_background(create_app(client)) as server:
        answer = httpx.get(f"{server.url}/metrics", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == CONTENT_TYPE_LATEST  # as `loopml serve` answers
    samples, names = parse(answer.text)

    def one(name: str, **labels: str) -> float:
        found = series(samples, name, **labels)
        assert len(found) == 1, (name, labels, found)
        return next(iter(found.values()))

    # The newest window: the eighth, all 300 predictions, no labels (only the first two had).
    assert one("loopml_monitor_window_rows", **LIVE) == ROWS
    assert one("loopml_monitor_window_labels", **LIVE) == 0
    assert one("loopml_monitor_window_start_timestamp_seconds", **LIVE) == T0 + 7 * 3600
    assert one("loopml_monitor_window_end_timestamp_seconds", **LIVE) == T0 + WINDOWS * 3600
    assert time.time() - one("loopml_monitor_last_evaluated_timestamp_seconds", **LIVE) < 600
    assert one("loopml_monitor_features", **LIVE) == len(world.features) == 30
    # mean_radius moved by three standard deviations: a PSI far above 0.25; the others did not.
    psi = {dict(k)["feature"]: v for k, v in series(samples, "loopml_monitor_feature_psi").items()}
    assert set(psi) == set(world.features)
    assert psi["mean_radius"] > 2
    others = sorted(v for f, v in psi.items() if f != "mean_radius")
    assert others[-1] < 0.5 and statistics.median(others) < 0.15, others
    drifted = series(samples, "loopml_monitor_feature_drifted", **LIVE)
    assert drifted[tuple(sorted({**LIVE, "feature": "mean_radius"}.items()))] == 1
    assert set(drifted.values()) == {0.0, 1.0}
    assert one("loopml_monitor_drifted_features", **LIVE) == sum(drifted.values())
    # The features the monitor's rules flag: what `loopml monitor show` lists.
    newest = mon.windows("live", client=client)[-1].stats
    flagged = series(samples, "loopml_monitor_feature_flagged", **LIVE)
    assert {dict(k)["feature"] for k, v in flagged.items() if v == 1} == set(newest["flagged"])
    assert "mean_radius" in newest["flagged"] and len(flagged) == len(world.features)
    assert one("loopml_monitor_flagged_features", **LIVE) == len(newest["flagged"])
    oor = one("loopml_monitor_feature_out_of_range_ratio", **LIVE, feature="mean_radius")
    assert oor > 0.05
    assert one("loopml_monitor_feature_missing_ratio", **LIVE, feature="mean_radius") == 0
    # Alerts: every one recorded, and the rules that fired on the newest window.
    assert one("loopml_monitor_alerts_total", monitor="live") == len(world.alerts) > 0
    fired_last = {a.rule for a in world.alerts if a.window_start == T0 + 7 * 3600}
    assert one("loopml_monitor_last_window_alerts", monitor="live") == len(fired_last) > 0
    assert "feature_drift" in fired_last
    # Predictions: the class mix of the window against the reference's.
    share = series(samples, "loopml_monitor_prediction_share", **LIVE)
    assert {dict(k)["class"] for k in share} == {"0", "1"}
    assert sum(share.values()) == pytest.approx(1)
    assert len(series(samples, "loopml_monitor_prediction_reference_share", **LIVE)) == 2
    assert 0 < one("loopml_monitor_prediction_mean", **LIVE) < 1
    assert len(series(samples, "loopml_monitor_prediction_quantile", **LIVE)) == 5
    # The request latency `loopml serve` logged with the window's predictions, in seconds.
    latency = series(samples, "loopml_monitor_latency_seconds", **LIVE)
    quantiles = {dict(k)["quantile"]: v for k, v in latency.items()}
    assert set(quantiles) == {"0.5", "0.95", "0.99", "1"}
    assert quantiles["1"] == pytest.approx(0.0119)
    assert 0.002 < quantiles["0.5"] < quantiles["0.95"] < quantiles["0.99"] <= quantiles["1"]
    # Performance: estimated from confidence (no labels in this window), inside its bounds.
    estimated = {"metric": "accuracy", "kind": "estimated"}
    value = one("loopml_monitor_metric", **LIVE, **estimated)
    low = one("loopml_monitor_metric_low", **LIVE, **estimated)
    high = one("loopml_monitor_metric_high", **LIVE, **estimated)
    assert 0.5 < low <= value <= high <= 1
    assert not series(samples, "loopml_monitor_metric", kind="live")
    # A monitor with no window yet: its own series, none of a window's.
    assert one("loopml_monitor_paused", monitor="idle") == 1
    assert one("loopml_monitor_paused", monitor="live") == 0
    assert one("loopml_monitor_alerts_total", monitor="idle") == 0
    assert one("loopml_monitor_window_seconds", monitor="idle") == 86400
    assert not series(samples, "loopml_monitor_window_rows", monitor="idle")
    # The scrape itself and the server process.
    assert one("loopml_monitor_scrape_success") == 1
    assert 0 < one("loopml_monitor_scrape_duration_seconds") < 30
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total", "python_info"} <= names


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_live_metrics_show_when_the_newest_window_has_labels(client: Any) -> None:
    synthetic_monitors(client, 1, stats(["a", "b"], live={"accuracy": 0.8, "roc_auc": "nan"}))
    samples, _ = parse(generate_latest(registry(client, process=False)).decode())
    live = series(samples, "loopml_monitor_metric", monitor="m00", kind="live")
    assert {dict(k)["metric"]: v for k, v in live.items()} == {"accuracy": 0.8}  # NaN left out
    assert not series(samples, "loopml_monitor_metric_low", kind="live")


def test_with_auth_the_scrape_needs_a_reader_token(client: Any) -> None:
    synthetic_monitors(client, 1, stats(["a"]), windows=1)
    secrets = make_tokens(client)
    with (
        serve_background(create_app(client, auth=True)) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        refused = http.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "reader" in refused.json()["detail"][0]["msg"]
        for caller in ("revoked", "expired"):
            bad = http.get("/metrics", headers={"Authorization": f"Bearer {secrets[caller]}"})
            assert bad.status_code == 401, caller
        # The browser's sign-in cookie is no key: Prometheus sends the Authorization header.
        assert (
            http.get(
                "/metrics", headers={"Cookie": f"loopml_session={secrets['admin']}"}
            ).status_code
            == 401
        )
        for caller in ROLES:
            ok = http.get("/metrics", headers={"Authorization": f"Bearer {secrets[caller]}"})
            assert ok.status_code == 200, (caller, ok.text[:200])
            assert 'loopml_monitor_window_rows{model="model0@production",monitor="m00"}' in ok.text
        # /health stays open for load balancers.
        assert http.get("/health").status_code == 200


def test_labels_stay_bounded_and_non_finite_numbers_are_sensible(client: Any) -> None:
    features = [f"f{i:03d}" for i in range(MAX_FEATURES + 50)]
    late = features[-3:]  # drifted, and beyond the cap in the monitor's order: shown first
    window = stats(
        features,
        drifted={late[0]: float("inf"), late[1]: 3.0, late[2]: 1.5},
        classes=MAX_CLASSES + 10,
        psi="nan",
    )
    window["drift"]["columns"][0]["statistics"]["psi"] = "inf"  # as the store keeps it
    window["flagged"] = {late[1]: ["feature_drift"]}
    synthetic_monitors(client, 1, window, windows=1)
    text = generate_latest(registry(client, process=False)).decode()
    assert "NaN" not in text
    samples, _ = parse(text)
    drifted = series(samples, "loopml_monitor_feature_drifted", monitor="m00")
    assert len(drifted) == MAX_FEATURES
    shown = {dict(k)["feature"] for k in drifted}
    assert set(late) <= shown and shown - set(late) == set(features[: MAX_FEATURES - 3])
    assert series(samples, "loopml_monitor_drifted_features", monitor="m00") == {
        (("model", "model0@production"), ("monitor", "m00")): 3
    }
    flagged = series(samples, "loopml_monitor_feature_flagged", monitor="m00")
    assert len(flagged) == MAX_FEATURES
    assert {dict(k)["feature"] for k, v in flagged.items() if v == 1} == {late[1]}
    psi = {dict(k)["feature"]: v for k, v in series(samples, "loopml_monitor_feature_psi").items()}
    assert psi == {late[0]: float("inf"), late[1]: 3.0, late[2]: 1.5}  # "nan" left out
    assert len(series(samples, "loopml_monitor_feature_missing_ratio")) == MAX_FEATURES
    assert len(series(samples, "loopml_monitor_prediction_share")) == MAX_CLASSES
    assert series(samples, "loopml_monitor_features", monitor="m00") == {
        (("model", "model0@production"), ("monitor", "m00")): len(features)
    }


class UnreachableStore:
    """A client whose store is down (the collector's only call into it is ``open``)."""

    def open(self) -> Any:
        raise StoreUnavailableError("The store at postgresql://db/loopml cannot be reached.")


def test_a_store_that_cannot_be_read_still_answers_the_scrape() -> None:
    down: Any = UnreachableStore()
    samples, names = parse(generate_latest(registry(down)).decode())
    assert series(samples, "loopml_monitor_scrape_success") == {(): 0}
    assert not series(samples, "loopml_monitor_paused")
    assert "process_cpu_seconds_total" in names
    assert MonitorCollector(down).describe() == []  # registering reads nothing


def test_a_scrape_of_20_monitors_by_50_features(client: Any) -> None:
    """The figure in docs/grafana.md: one scrape over HTTP, median of 20."""
    features = [f"feature_{i:02d}" for i in range(50)]
    synthetic_monitors(client, 20, stats(features, drifted={"feature_07": 0.9}), windows=24)
    times = []
    with (
        serve_background(create_app(client)) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        for _ in range(20):
            started = time.perf_counter()
            answer = http.get("/metrics")
            times.append(time.perf_counter() - started)
            assert answer.status_code == 200
    samples, _ = parse(answer.text)
    assert len(series(samples, "loopml_monitor_feature_psi")) == 20 * 50
    assert len(series(samples, "loopml_monitor_feature_drifted")) == 20 * 50
    assert sum(series(samples, "loopml_monitor_drifted_features").values()) == 20
    median = statistics.median(times)
    print(
        f"\n/metrics, 20 monitors x 50 features ({'sqlite' if client.metadata.db.is_sqlite else 'postgresql'}): "
        f"median {median * 1000:.1f} ms, max {max(times) * 1000:.1f} ms, "
        f"{len(answer.content) / 1024:.0f} KiB"
    )
    assert median < 5  # seconds: generous on a shared CI machine; about 0.1 s on 2 cores
