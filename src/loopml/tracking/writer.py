"""Buffered, batched metric/param/tag writes for one run.

Points are validated when logged (so the caller gets the error), buffered in memory and
written in one transaction per batch: when the buffer reaches ``max_points``, when the
heartbeat thread ticks (about once a second), and when the run ends or the process is
interrupted. A failed flush keeps the buffer and raises, so no point is dropped silently.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from loopml.store import MetadataStore
from loopml.store.metrics import Point, check_key, check_point, check_text, param_value
from loopml.tracking.context import active_step_run


class BatchWriter:
    """Thread-safe buffer of one run's tracking writes."""

    def __init__(self, store: MetadataStore, run_id: str, *, max_points: int = 20_000) -> None:
        self.store = store
        self.run_id = run_id
        self.max_points = max_points
        self.points: list[Point] = []
        self.params: dict[str, Any] = {}
        self.tags: dict[str, str] = {}
        self.written = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._next_step: dict[str, int] = {}
        # What each running step logged, so a later cache hit can replay it into its run.
        self.by_step: dict[str, dict[str, Any]] = {}

    def _step_log(self) -> dict[str, Any] | None:
        step_run = active_step_run()
        if step_run is None:
            return None
        return self.by_step.setdefault(step_run, {"metrics": [], "params": {}, "tags": {}})

    def take_step_log(self, step_run_id: str) -> dict[str, Any]:
        """What a step logged (metrics, params, tags); removed from memory."""
        with self._lock:
            return self.by_step.pop(step_run_id, {"metrics": [], "params": {}, "tags": {}})

    def metric(self, key: str, value: float, step: int | None, timestamp: object) -> None:
        ts = time.time() if timestamp is None else timestamp
        with self._lock:
            if step is None:
                step = self._next_step.get(key, 0)
            point = check_point(key, value, step, ts)
            self._next_step[key] = max(self._next_step.get(key, 0), point[1] + 1)
            self.points.append(point)
            log = self._step_log()
            if log is not None:
                log["metrics"].append([point[0], point[1], point[2]])
            full = len(self.points) >= self.max_points
        if full:
            self.flush()

    def metrics(self, values: dict[str, float], step: int | None, timestamp: float | None) -> None:
        for key, value in values.items():
            self.metric(key, value, step, timestamp)

    def param(self, key: str, value: Any) -> None:
        check_key("Param", key)
        check_text("Param", key, param_value(value)[0])
        with self._lock:
            self.params[key] = value
            log = self._step_log()
            if log is not None:
                log["params"][key] = (
                    value
                    if isinstance(value, bool | int | float | str) or value is None
                    else repr(value)
                )

    def tag(self, key: str, value: Any) -> None:
        check_key("Tag", key)
        check_text("Tag", key, str(value))
        with self._lock:
            self.tags[key] = str(value)
            log = self._step_log()
            if log is not None:
                log["tags"][key] = str(value)

    def flush(self) -> None:
        """Write everything buffered; on failure the data stays buffered and the error is raised."""
        with self._flush_lock:
            with self._lock:
                points, params, tags = self.points, self.params, self.tags
                self.points, self.params, self.tags = [], {}, {}
            if not (points or params or tags):
                return
            try:
                self.store.metrics.write_batch(self.run_id, points, params, tags)
            except BaseException:
                with self._lock:
                    self.points[:0] = points
                    self.params = {**params, **self.params}
                    self.tags = {**tags, **self.tags}
                raise
            self.written += len(points)
