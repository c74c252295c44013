"""The monitors as Prometheus gauges: what ``GET /metrics`` of ``loopml server`` shows.

A custom collector reads the store when Prometheus scrapes, so nothing is kept in memory
and a window evaluated by any process (the scheduler, ``loopml monitor run`` on a laptop)
shows on the next scrape. Each scrape reads ``list_monitors`` (two queries for all
monitors, then two per monitor: its newest window and the alerts fired on it) and exports
the newest window of each monitor; Prometheus keeps the history, so a dashboard draws the
windows one after another as they are evaluated.

Labels stay bounded: per monitor at most ``MAX_FEATURES`` features (those the rules flag
first, then those the drift verdict calls drifted, then the others in the monitor's order) and ``MAX_CLASSES`` predicted classes. Numbers
the statistics store as ``"inf"`` are exported as ``+Inf``; ``"nan"`` and missing values
are left out (a gap on a graph, not a fake zero).

Series (each series of a monitor has the labels ``monitor`` and ``model``, the watched
reference, e.g. ``churn@production``):

- per monitor: ``loopml_monitor_paused``, ``loopml_monitor_alerts_total`` (every alert it
  recorded), ``loopml_monitor_last_window_alerts``, ``loopml_monitor_window_seconds``,
  ``loopml_monitor_every_seconds``;
- its newest window: ``loopml_monitor_window_rows``, ``…_window_labels``,
  ``…_window_start_timestamp_seconds``, ``…_window_end_timestamp_seconds``,
  ``…_last_evaluated_timestamp_seconds``, ``…_features``, ``…_flagged_features`` (by the
  monitor's feature rules, what ``loopml monitor show`` lists), ``…_drifted_features`` (by
  the drift verdict's fixed thresholds);
- per feature: ``loopml_monitor_feature_psi``, ``…_feature_flagged`` and
  ``…_feature_drifted`` (0/1),
  ``…_feature_missing_ratio``, ``…_feature_out_of_range_ratio``;
- predictions: ``loopml_monitor_prediction_share`` and ``…_prediction_reference_share``
  (by ``class``), ``…_prediction_mean``, ``…_prediction_quantile`` (by ``quantile``);
- latency: ``loopml_monitor_latency_seconds`` (by ``quantile``: 0.5, 0.95, 0.99 and 1, the
  slowest), the request latency ``loopml serve`` logged with the window's predictions;
- performance: ``loopml_monitor_metric`` (by ``metric`` and ``kind``: ``live`` from the
  labels joined so far, ``estimated`` from the model's confidence), with
  ``loopml_monitor_metric_low`` / ``…_high`` bounds of the estimated ones;
- the scrape itself: ``loopml_monitor_scrape_duration_seconds``,
  ``loopml_monitor_scrape_success`` (0 when the store could not be read).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from loopml.errors import LoopmlError
from loopml.monitoring import summary

if TYPE_CHECKING:
    from prometheus_client.core import CollectorRegistry, Metric

    from loopml.monitoring.monitors import MonitorInfo
    from loopml.tracking.client import Client

log = logging.getLogger(__name__)

#: The most features exported per monitor (``loopml_monitor_feature_*`` series).
MAX_FEATURES = 200
#: The most predicted classes exported per monitor (``loopml_monitor_prediction_*share``).
MAX_CLASSES = 50

#: Every series of a monitor carries both, so any two of them join on their labels.
_MONITOR = ["monitor", "model"]
#: The engine's latency percentiles (milliseconds) as Prometheus quantiles.
LATENCY_QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99", "max": "1"}
#: (name, help, labels) of every gauge; the order is the order of the exposition.
_GAUGES: tuple[tuple[str, str, list[str]], ...] = (
    ("paused", "1 when the monitor is paused.", _MONITOR),
    ("last_window_alerts", "Rules that fired on the monitor's newest window.", _MONITOR),
    ("window_seconds", "Length of the monitor's windows.", _MONITOR),
    ("every_seconds", "How often a window of the monitor starts.", _MONITOR),
    ("window_rows", "Predictions in the newest evaluated window.", _MONITOR),
    ("window_labels", "Predictions with a label (feedback) in the newest window.", _MONITOR),
    ("window_start_timestamp_seconds", "Start of the newest evaluated window.", _MONITOR),
    ("window_end_timestamp_seconds", "End of the newest evaluated window.", _MONITOR),
    ("last_evaluated_timestamp_seconds", "When the newest window was evaluated.", _MONITOR),
    ("features", "Input features the newest window compared with the reference.", _MONITOR),
    ("flagged_features", "Features the monitor's rules flag in the newest window.", _MONITOR),
    (
        "drifted_features",
        "Features the drift verdict (fixed thresholds) calls drifted in the newest window.",
        _MONITOR,
    ),
    (
        "feature_psi",
        "Population stability index of a feature, newest window against the reference.",
        [*_MONITOR, "feature"],
    ),
    ("feature_flagged", "1 when the monitor's rules flag the feature.", [*_MONITOR, "feature"]),
    (
        "feature_drifted",
        "1 when the drift verdict calls the feature drifted.",
        [*_MONITOR, "feature"],
    ),
    ("feature_missing_ratio", "Share of rows missing the feature.", [*_MONITOR, "feature"]),
    (
        "feature_out_of_range_ratio",
        "Share of rows with a value the reference never had (out of range, new category).",
        [*_MONITOR, "feature"],
    ),
    ("prediction_share", "Share of predictions of each class.", [*_MONITOR, "class"]),
    (
        "prediction_reference_share",
        "Share of each class in the reference's predictions.",
        [*_MONITOR, "class"],
    ),
    ("prediction_mean", "Mean prediction (regressors) or positive score.", _MONITOR),
    ("prediction_quantile", "Quantiles of the predictions.", [*_MONITOR, "quantile"]),
    (
        "latency_seconds",
        "Request latency of the window's predictions (quantile 1: the slowest).",
        [*_MONITOR, "quantile"],
    ),
    (
        "metric",
        "A performance metric: live (from labels) or estimated (from confidence).",
        [*_MONITOR, "metric", "kind"],
    ),
    ("metric_low", "Lower bound of an estimated metric.", [*_MONITOR, "metric", "kind"]),
    ("metric_high", "Upper bound of an estimated metric.", [*_MONITOR, "metric", "kind"]),
)


def number(value: Any) -> float | None:
    """A stored statistic as a float: ``"inf"`` → ``inf``; NaN, text and None → None."""
    infinite = isinstance(value, str) and value.strip().lower().lstrip("+-") in ("inf", "infinity")
    if not (infinite or isinstance(value, int | float)):
        return None
    found = float(value)
    return None if math.isnan(found) else found


class MonitorCollector:
    """A prometheus_client collector over the monitors of ``client``'s store."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def describe(self) -> list[Metric]:
        # No store read when the collector is registered: the series are known at scrape time.
        return []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from loopml.monitoring.monitors import list_monitors

        started = time.perf_counter()
        gauges = {
            name: GaugeMetricFamily(f"loopml_monitor_{name}", text, labels=labels)
            for name, text, labels in _GAUGES
        }
        alerts = CounterMetricFamily(
            "loopml_monitor_alerts", "Alerts the monitor recorded (all windows).", labels=_MONITOR
        )
        try:
            infos = list_monitors(self.client)
        except LoopmlError as exc:
            log.warning("/metrics: the monitors could not be read: %s", exc)
            infos, ok = [], 0.0
        else:
            ok = 1.0
        for info in infos:
            alerts.add_metric([info.record.name, info.record.model], float(info.alerts))
            _add_monitor(gauges, info)
        yield from gauges.values()
        yield alerts
        yield GaugeMetricFamily(
            "loopml_monitor_scrape_success",
            "1 when the monitors were read from the store on this scrape.",
            value=ok,
        )
        yield GaugeMetricFamily(
            "loopml_monitor_scrape_duration_seconds",
            "Time to read the monitors for this scrape.",
            value=time.perf_counter() - started,
        )


def _add_monitor(gauges: dict[str, Any], info: MonitorInfo) -> None:
    record = info.record

    def put(name: str, value: Any, *labels: str) -> None:
        found = number(value)
        if found is not None:
            gauges[name].add_metric([record.name, *labels], found)

    model = record.model
    put("paused", record.paused, model)
    put("last_window_alerts", len(info.last_alerts), model)
    put("window_seconds", record.window_s, model)
    put("every_seconds", record.every_s, model)
    window = info.last
    if window is None:
        return
    put("window_rows", window.rows, model)
    put("window_labels", window.labels, model)
    put("window_start_timestamp_seconds", window.start, model)
    put("window_end_timestamp_seconds", window.end, model)
    put("last_evaluated_timestamp_seconds", window.evaluated_at, model)
    stats = window.stats if isinstance(window.stats, dict) else {}
    columns = {
        str(c.get("column")): c
        for c in _dicts((stats.get("drift") or {}).get("columns"))
        if c.get("column") is not None
    }
    quality: dict[str, Any] = stats.get("quality") or {}
    features = [str(f) for f in stats.get("features") or []] or list(columns) or list(quality)
    put("features", len(features), model)
    flagged = set(summary.flagged(stats))
    put("flagged_features", len(flagged), model)
    put("drifted_features", sum(1 for c in columns.values() if c.get("drifted")), model)
    for feature in exported_features(features, columns, summary.flagged(stats)):
        column = columns.get(feature, {})
        put("feature_psi", (column.get("statistics") or {}).get("psi"), model, feature)
        put("feature_flagged", feature in flagged, model, feature)
        if "drifted" in column:
            put("feature_drifted", bool(column["drifted"]), model, feature)
        checks = quality.get(feature) or {}
        put("feature_missing_ratio", checks.get("missing"), model, feature)
        put("feature_out_of_range_ratio", checks.get("out_of_range"), model, feature)
    prediction = stats.get("prediction") or {}
    for key, name in (
        ("shares", "prediction_share"),
        ("reference_shares", "prediction_reference_share"),
    ):
        for cls, share in _items(prediction.get(key))[:MAX_CLASSES]:
            put(name, share, model, cls)
    put("prediction_mean", prediction.get("mean"), model)
    for q, value in _items(prediction.get("quantiles")):
        put("prediction_quantile", value, model, q)
    for key, ms in _items(stats.get("latency_ms")):
        quantile = LATENCY_QUANTILES.get(key)
        seconds = number(ms)
        if quantile is not None and seconds is not None:
            put("latency_seconds", seconds / 1000, model, quantile)
    performance = stats.get("performance") or {}
    for metric, value in _items((performance.get("live") or {}).get("metrics")):
        put("metric", value, model, metric, "live")
    for metric, bounds in _items((performance.get("estimated") or {}).get("metrics")):
        if isinstance(bounds, dict):
            put("metric", bounds.get("value"), model, metric, "estimated")
            put("metric_low", bounds.get("low"), model, metric, "estimated")
            put("metric_high", bounds.get("high"), model, metric, "estimated")


def exported_features(
    features: list[str], columns: dict[str, dict[str, Any]], flagged: list[str]
) -> list[str]:
    """At most ``MAX_FEATURES``: past that many, the flagged ones first, then the drifted
    ones (worst first), then the others in the monitor's order. A monitor of up to that
    many features keeps the same series from window to window."""
    if len(features) <= MAX_FEATURES:
        return features
    drifted = [name for name, c in columns.items() if c.get("drifted")]
    return list(dict.fromkeys([*flagged, *drifted, *features]))[:MAX_FEATURES]


def _dicts(values: Any) -> list[dict[str, Any]]:
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []


def _items(mapping: Any) -> list[tuple[str, Any]]:
    return [(str(k), v) for k, v in mapping.items()] if isinstance(mapping, dict) else []


def registry(client: Client, *, process: bool = True) -> CollectorRegistry:
    """A registry with the monitors of ``client``'s store and (``process``) the serving
    process's own series: CPU, memory, open files (``process_*``), ``python_info`` and
    the garbage collector (``python_gc_*``)."""
    from prometheus_client import (
        CollectorRegistry,
        GCCollector,
        PlatformCollector,
        ProcessCollector,
    )

    reg = CollectorRegistry()
    reg.register(MonitorCollector(client))
    if process:
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        GCCollector(registry=reg)
    return reg
