"""The Prometheus series of one serving app (``GET /metrics``), on its own registry."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.serving.app import ServeState, Variant
    from loopml.serving.served import Outputs

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)


class ServeMetrics:
    """The Prometheus series of one app, on its own registry (two apps never share)."""

    def __init__(self, state: ServeState) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "loopml_requests", "Requests by route and status code.", ["route", "code"], registry=r
        )
        self.latency = Histogram(
            "loopml_request_seconds",
            "Time to answer a request, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rows = Counter(
            "loopml_rows_predicted", "Rows predicted, by variant.", ["variant"], registry=r
        )
        self.classes = Counter(
            "loopml_predicted_class",
            "Predicted classes, by variant (classifiers).",
            ["variant", "cls"],
            registry=r,
        )
        self.values = Histogram(
            "loopml_prediction_value",
            "Predicted values, by variant (regressors).",
            ["variant"],
            buckets=(-1e3, -1e2, -10, -1, 0, 1, 10, 50, 100, 250, 500, 1e3, 1e4, 1e5),
            registry=r,
        )
        self.switches = Counter(
            "loopml_model_switches",
            "Times a followed alias moved and the new version took over.",
            ["variant"],
            registry=r,
        )
        self.info = Gauge(
            "loopml_model_info",
            "The version answering for each variant (value 1).",
            ["variant", "version", "runtime"],
            registry=r,
        )
        self.shadow_skipped = Counter(
            "loopml_shadow_skipped_rows", "Shadow rows not scored (backlog full).", registry=r
        )
        self.shadow_failed = Counter(
            "loopml_shadow_failed_rows", "Shadow rows whose scoring failed.", registry=r
        )
        prediction_log = state.log
        if prediction_log is not None:
            for name, what, attr in (
                ("written_rows", "Logged prediction rows written to the store.", "written"),
                ("dropped_rows", "Prediction rows not logged: the queue was full.", "dropped"),
                (
                    "failed_rows",
                    "Prediction rows whose write to the store failed.",
                    "failed_writes",
                ),
            ):
                g = Gauge(f"loopml_prediction_log_{name}", what, registry=r)
                g.set_function(functools.partial(_counter_of, prediction_log, attr))
        self._children: dict[tuple[Any, ...], Any] = {}
        self._ok = {"predict": self.requests.labels("predict", "200")}
        self._timers = {route: self.latency.labels(route) for route in ("predict", "feedback")}
        self._variants = [*state.variants, *([state.shadow] if state.shadow else [])]
        self._show_versions()

    def _show_versions(self) -> None:
        self.info.clear()
        for v in self._variants:
            self.info.labels(v.label, str(v.served.version.number), v.served.runtime).set(1)

    def done(self, route: str, code: int, started: float) -> None:
        counter = self._ok.get(route) if code == 200 else None
        (counter or self.requests.labels(route, str(code))).inc()
        self._timers[route].observe(time.perf_counter() - started)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def predicted(self, variant: Variant, outputs: Outputs, n: int) -> None:
        self._child(self.rows, variant.label).inc(n)
        if outputs.probabilities is not None or outputs.classes is not None:
            if n == 1:
                self._child(self.classes, variant.label, str(outputs.predictions[0])).inc()
            else:
                import numpy as np

                labels, counts = np.unique(outputs.predictions.astype(str), return_counts=True)
                for label, count in zip(labels, counts, strict=True):
                    self._child(self.classes, variant.label, str(label)).inc(int(count))
        elif outputs.predictions.dtype.kind in "fiu":
            hist = self._child(self.values, variant.label)
            for value in outputs.predictions[:1000].tolist():
                hist.observe(value)

    def switched(self, variant: Variant) -> None:
        self.switches.labels(variant.label).inc()
        self._show_versions()


def _counter_of(owner: object, attr: str) -> float:
    return float(getattr(owner, attr))
