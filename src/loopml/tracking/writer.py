"""Buffered, batched metric/param/tag writes for one run.

Points are validated when logged (so the caller gets the error), buffered in memory and
written in one transaction per batch by the heartbeat thread: about once a second, and at
once when ``soft_limit`` points are waiting (the thread is nudged, and SQLite releases
the interpreter lock while it writes, so logging goes on meanwhile). Only a caller that
gets ``max_points`` ahead of the database writes the batch itself (back-pressure), and
the run's end writes the rest in its final transaction.

Nothing is dropped silently:

- a store that is briefly unavailable keeps the batch buffered for the next flush;
- a row the store refuses (it should have been refused at the call) does not sink the
  batch: the batch is split until the bad rows are isolated, the rest is stored, and the
  bad rows are reported;
- a run swept as crashed refuses the batch (``LeaseLostError``), and says how much was lost.

An error met by a background flush is raised by the next logging call of the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from loopml.errors import InvalidParameterError, LeaseLostError, LoopmlError
from loopml.store import MetadataStore
from loopml.store.metrics import Checked, Point, check_point, param_row, tag_row
from loopml.tracking.context import _step_run

_Batch = tuple[list[Point], dict[str, Any], dict[str, Any]]


class BatchWriter:
    """Thread-safe buffer of one run's tracking writes."""

    def __init__(
        self,
        store: MetadataStore,
        run_id: str,
        *,
        max_points: int = 200_000,
        soft_limit: int = 20_000,
        nudge: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.max_points = max_points
        self.soft_limit = soft_limit
        self._nudge = nudge
        self._nudged = False
        self.points: list[Point] = []
        self.params: dict[str, Any] = {}
        self.tags: dict[str, Any] = {}
        self.written = 0
        self.failure: LoopmlError | None = None
        self._lock = threading.Lock()
        self._flush_lock = threading.RLock()  # re-entered by Run.end when it flushes
        self._next_step: dict[str, int] = {}
        # What each running step logged, so a later cache hit can replay it into its run.
        self.by_step: dict[str, dict[str, Any]] = {}

    def _raise_failure(self) -> None:
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure

    def _step_log(self) -> dict[str, Any] | None:
        step_run = _step_run.get()
        return None if step_run is None else self._step_log_of(step_run)

    def _step_log_of(self, step_run: str) -> dict[str, Any]:
        return self.by_step.setdefault(step_run, {"metrics": [], "params": {}, "tags": {}})

    def take_step_log(self, step_run_id: str) -> dict[str, Any]:
        """What a step logged (metrics, params, tags); removed from memory."""
        with self._lock:
            return self.by_step.pop(step_run_id, {"metrics": [], "params": {}, "tags": {}})

    def metric(self, key: str, value: float, step: int | None, timestamp: object) -> None:
        # The hot path of logging (DESIGN.md §6: >= 200,000 points/s): keep it flat.
        if self.failure is not None:
            self._raise_failure()
        ts = time.time() if timestamp is None else timestamp
        with self._lock:
            nxt = self._next_step
            if step is None:
                step = nxt.get(key, 0)
            point = check_point(key, value, step, ts)
            if point[1] >= nxt.get(point[0], 0):
                nxt[point[0]] = point[1] + 1
            points = self.points
            points.append(point)
            step_run = _step_run.get()
            if step_run is not None:
                self._step_log_of(step_run)["metrics"].append([point[0], point[1], point[2]])
            waiting = len(points)
        if waiting >= self.soft_limit and not self._nudged and self._nudge is not None:
            self._nudged = True
            self._nudge()
        if waiting >= self.max_points:
            self.flush()

    def pending(self) -> int:
        """How many metric points wait to be written."""
        return len(self.points)

    def metrics(self, values: dict[str, float], step: int | None, timestamp: float | None) -> None:
        for key, value in values.items():
            self.metric(key, value, step, timestamp)

    def param(self, key: str, value: Any) -> None:
        if self.failure is not None:
            self._raise_failure()
        name, text, num = param_row(key, value)  # checked now: the caller gets the error
        with self._lock:
            self.params[name] = Checked((text, num))
            log = self._step_log()
            if log is not None:
                log["params"][name] = (
                    value if isinstance(value, bool | int | float) or value is None else text
                )

    def tag(self, key: str, value: Any) -> None:
        if self.failure is not None:
            self._raise_failure()
        name, text = tag_row(key, value)
        with self._lock:
            self.tags[name] = value
            log = self._step_log()
            if log is not None:
                log["tags"][name] = text

    def hold(self) -> None:
        """Stop flushes (waiting for one in progress) until :meth:`release`: the run's end
        writes the last batch itself, in its final transaction."""
        self._flush_lock.acquire()

    def release(self) -> None:
        self._flush_lock.release()

    def take(self) -> _Batch:
        """Everything buffered, removed from the buffer (put it back with ``restore``)."""
        with self._lock:
            batch = (self.points, self.params, self.tags)
            self.points, self.params, self.tags = [], {}, {}
            self._nudged = False
        return batch

    def restore(self, batch: _Batch) -> None:
        points, params, tags = batch
        with self._lock:
            self.points[:0] = points
            self.params = {**params, **self.params}
            self.tags = {**tags, **self.tags}

    def flush(self, *, background: bool = False) -> None:
        """Write everything buffered.

        A transient failure leaves the data buffered and raises; in the background (the
        heartbeat thread) it is kept for the next call of the run's owner instead.
        """
        with self._flush_lock:
            batch = self.take()
            if not any(batch):
                if not background:
                    self._raise_failure()
                return
            try:
                self._write(batch)
            except LeaseLostError as exc:
                lost = LeaseLostError(f"{exc} {_describe(batch)} were not stored.")
                if background:
                    self.failure = lost
                    return
                raise lost from exc
            except InvalidParameterError as exc:
                refused = self._store_isolating(batch, exc)
                if background:
                    self.failure = refused
                    return
                raise refused from exc
            except LoopmlError:
                self.restore(batch)
                if background:
                    return  # a busy or briefly unavailable store: the next tick retries
                raise
            self.written += len(batch[0])
            if not background:
                self._raise_failure()

    def _write(self, batch: _Batch) -> None:
        self.store.metrics.write_batch(self.run_id, *batch)

    def _store_isolating(
        self, batch: _Batch, first: InvalidParameterError
    ) -> InvalidParameterError:
        """Store every row of ``batch`` the store accepts; return an error naming the others."""
        refused: list[str] = []

        def attempt(part: _Batch) -> None:
            try:
                self._write(part)
                self.written += len(part[0])
            except InvalidParameterError:
                halves = _split(part)
                if halves is None:
                    refused.append(_describe(part))
                    return
                for half in halves:
                    attempt(half)

        points, params, tags = batch
        parts: list[_Batch] = [(points, {}, {}), ([], params, {}), ([], {}, tags)]
        for part in parts:
            if any(part):
                attempt(part)
        shown = "; ".join(refused[:3]) + (
            f"; and {len(refused) - 3} more" if len(refused) > 3 else ""
        )
        return InvalidParameterError(
            f"The store refused {len(refused)} row{'s' if len(refused) != 1 else ''} of run "
            f"{self.run_id[:8]} ({shown}); the rest of the batch was stored. First error: {first}"
        )


def _split(batch: _Batch) -> list[_Batch] | None:
    """Halves of a batch holding more than one row, or None for a single row."""
    points, params, tags = batch
    if len(points) > 1:
        mid = len(points) // 2
        return [(points[:mid], {}, {}), (points[mid:], {}, {})]
    for kind, rows in (("params", params), ("tags", tags)):
        if len(rows) > 1:
            items = list(rows.items())
            mid = len(items) // 2
            halves = [dict(items[:mid]), dict(items[mid:])]
            if kind == "params":
                return [([], halves[0], {}), ([], halves[1], {})]
            return [([], {}, halves[0]), ([], {}, halves[1])]
    return None


def _describe(batch: _Batch) -> str:
    points, params, tags = batch
    parts = []
    if points:
        parts.append(f"{len(points):,} metric point{'s' if len(points) != 1 else ''}")
    if params:
        parts.append(f"param{'s' if len(params) != 1 else ''} {', '.join(sorted(params)[:5])}")
    if tags:
        parts.append(f"tag{'s' if len(tags) != 1 else ''} {', '.join(sorted(tags)[:5])}")
    return ", ".join(parts) or "nothing"
