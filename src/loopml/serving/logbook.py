"""Predictions logged off the request path, feedback attached later, both read back as a frame.

A request hands its batch to :meth:`PredictionLog.submit`, which only appends to a queue
(after the sampling decision). One writer thread turns queued batches into rows (JSON of
the input row and of the output) and writes them to the store in one transaction per
flush: every ``flush_seconds`` or as soon as ``batch_rows`` rows wait. ``close`` drains the
queue, so a clean shutdown loses nothing. A queue past ``max_queued_rows`` (a store that
cannot keep up) drops new batches rather than slow the requests or grow without bound, and
counts them in ``dropped``, which ``/metrics`` reports.

``predictions("churn", since=...)`` reads the log back as a pandas DataFrame: one column per
input column, the prediction (and class probabilities), the variant and version that
answered, and the label from ``/feedback`` when it arrived.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError, LoopmlError

if TYPE_CHECKING:
    import pandas as pd

    from loopml.serving.served import Checked, Outputs
    from loopml.tracking.client import Client


class PredictionLog:
    """The asynchronous, batched writer of one serving process.

    Args:
        client: the store to write to.
        sample_rate: the share of requests whose rows are logged (0 to 1).
        batch_rows: write as soon as this many rows wait.
        flush_seconds: write at least this often while rows wait.
        max_queued_rows: past this many waiting rows, new batches are dropped and counted.
    """

    def __init__(
        self,
        client: Client,
        *,
        sample_rate: float = 1.0,
        batch_rows: int = 2_000,
        flush_seconds: float = 0.5,
        max_queued_rows: int = 1_000_000,
    ) -> None:
        if not isinstance(sample_rate, int | float) or not 0.0 <= sample_rate <= 1.0:
            raise InvalidParameterError(
                f"log sample rate: got {sample_rate!r}; expected a share from 0 to 1, e.g. 0.1 "
                "to log one request in ten."
            )
        self.client = client
        self.sample_rate = float(sample_rate)
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.max_queued_rows = max_queued_rows
        self.written = 0
        self.dropped = 0
        self.failed_writes = 0
        self.last_error: str | None = None
        self._queue: deque[tuple[Any, ...]] = deque()
        self._queued = 0
        self._accepted = 0  # rows submit took, and rows the writer settled (written or
        self._settled = 0  # failed): flush waits for the second to reach the first
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="loopml-prediction-log", daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        """Whether this request's rows are logged (decided once per request)."""
        rate = self.sample_rate
        return rate >= 1.0 or (rate > 0.0 and random.random() < rate)

    def submit(
        self,
        model: str,
        version: int,
        variant: str,
        ids: list[str],
        batch: Checked,
        outputs: Outputs,
        *,
        shadow_of: list[str] | None = None,
        latency_ms: float | None = None,
    ) -> bool:
        """Queue a scored batch; False when it was dropped (the queue is full).

        ``latency_ms``: how long the request took so far (each of its rows records it)."""
        n = len(ids)
        with self._lock:
            if self._queued + n > self.max_queued_rows or self._closing:
                self.dropped += n
                return False
            self._queued += n
            self._accepted += n
            # Appended under the lock, so close() never sees an empty queue while a batch
            # it did not refuse is still on its way in.
            self._queue.append(
                (model, version, variant, ids, batch, outputs, shadow_of, time.time(), latency_ms)
            )
        if self._queued >= self.batch_rows:
            self._wake.set()
        return True

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything queued so far is written (or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        target = self._accepted
        with self._idle:
            self._wake.set()
            # Not ``while self._queue``: the writer empties the queue before its write ends.
            while self._settled < target and time.monotonic() < deadline:
                self._idle.wait(0.05)
                self._wake.set()

    def close(self, timeout: float = 60.0) -> None:
        """Write everything queued, then stop the writer."""
        with self._lock:
            self._closing = True
        self._wake.set()
        self._thread.join(timeout)

    # -- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self._drain()
            with self._lock:
                done = self._closing and not self._queue
            if done:
                return

    def _drain(self) -> None:
        from loopml.store.predictions import PredictionRow

        while self._queue:
            rows: list[PredictionRow] = []
            taken = 0
            while self._queue and len(rows) < self.batch_rows * 2:
                item = self._queue.popleft()
                taken += len(item[3])
                try:
                    rows += _rows(item)
                except Exception as exc:  # a batch that cannot be encoded must not stop the log
                    self.failed_writes += len(item[3])
                    self.last_error = f"{type(exc).__name__}: {exc}"
            try:
                self.client.open().metadata.predictions.add(rows)
                self.written += len(rows)
            except Exception as exc:  # a store outage must not kill the writer
                self.failed_writes += len(rows)
                self.last_error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._queued -= taken
                self._settled += taken
        with self._idle:
            self._idle.notify_all()


def _rows(item: tuple[Any, ...]) -> list[Any]:
    from loopml.store.predictions import PredictionRow

    model, version, variant, ids, batch, outputs, shadow_of, at, latency_ms = item
    try:
        inputs, outs = _encoded(batch, outputs)
    except (TypeError, ValueError):  # a value orjson has no form for (pd.NA, a huge int)
        inputs, outs = _encoded_carefully(batch, outputs)
    version = int(version)
    return [
        PredictionRow(
            pid,
            model,
            version,
            variant,
            at,
            inputs[i],
            outs[i],
            shadow_of[i] if shadow_of is not None else None,
            latency_ms=latency_ms,
        )
        for i, pid in enumerate(ids)
    ]


def _encoded(batch: Checked, outputs: Outputs) -> tuple[list[str], list[str]]:
    """Each row's input and output as JSON, with orjson from the columns as Python lists
    (the log's writer would otherwise spend more on JSON than the server on predicting).
    NaN and infinity are written as null."""
    import orjson

    cols = batch.columns()
    p, proba = outputs.predictions, outputs.probabilities
    names = list(cols)
    lists = [v.tolist() for v in cols.values()]
    inputs = [
        orjson.dumps(dict(zip(names, row, strict=True))).decode()
        for row in zip(*lists, strict=True)
    ]
    values = p.tolist()
    if proba is None:
        outs = [orjson.dumps({"prediction": v}).decode() for v in values]
    else:
        outs = [
            orjson.dumps({"prediction": v, "probabilities": q}).decode()
            for v, q in zip(values, proba.tolist(), strict=True)
        ]
    return inputs, outs


def _encoded_carefully(batch: Checked, outputs: Outputs) -> tuple[list[str], list[str]]:
    """The same through ``column_values`` (pandas' NA, datetimes, any object) and json."""
    from loopml.serving.jsonable import column_values

    inputs = [json.dumps(r, separators=(",", ":")) for r in batch.records()]
    predictions = column_values(outputs.predictions)
    proba = outputs.probabilities.tolist() if outputs.probabilities is not None else None
    outs = []
    for i, value in enumerate(predictions):
        out: dict[str, Any] = {"prediction": value}
        if proba is not None:
            out["probabilities"] = proba[i]
        outs.append(json.dumps(out, separators=(",", ":")))
    return inputs, outs


def predictions(
    model: str,
    *,
    since: datetime | float | str | None = None,
    until: datetime | float | str | None = None,
    version: int | None = None,
    variant: str | None = None,
    limit: int | None = None,
    client: Client | None = None,
) -> pd.DataFrame:
    """The logged predictions of ``model`` as a DataFrame, feedback joined.

    Columns: ``prediction_id``, ``at`` (UTC), ``version``, ``variant``, ``shadow_of`` (for a
    shadow model's row, the id of the prediction that answered), one column per input
    column, ``prediction``, ``proba_<class>`` for classifiers, ``label`` and ``feedback_at``
    (empty until ``/feedback`` sends the ground truth), and ``latency_ms`` (the request's time
    in ``loopml serve``; empty for batch scoring). ``since``/``until`` take a datetime
    (naive means UTC), Unix seconds or ISO 8601 text.

    Example:
        >>> import loopml
        >>> frame = loopml.predictions("churn", since="2026-11-01")   # doctest: +SKIP
        >>> (frame.prediction == frame.label).mean()                  # doctest: +SKIP
    """
    import pandas as pd

    from loopml.store.models import check_model_name
    from loopml.tracking.client import given_or_default

    check_model_name(model)
    rows = (
        given_or_default(client)
        .open()
        .metadata.predictions.query(
            model,
            since=_seconds(since, "since"),
            until=_seconds(until, "until"),
            version=version,
            variant=variant,
            limit=limit,
        )
    )
    records: list[dict[str, Any]] = []
    for r in rows:
        record: dict[str, Any] = {
            "prediction_id": r.id,
            "at": r.at,
            "version": r.version,
            "variant": r.variant,
            "shadow_of": r.shadow_of,
        }
        record.update(json.loads(r.inputs))
        output = json.loads(r.output)
        record["prediction"] = output.get("prediction")
        record["_probabilities"] = output.get("probabilities")
        record["label"] = json.loads(r.label) if r.label is not None else None
        record["feedback_at"] = r.feedback_at
        record["latency_ms"] = r.latency_ms
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(
            columns=[
                "prediction_id",
                "at",
                "version",
                "variant",
                "shadow_of",
                "prediction",
                "label",
            ]
        )
    probabilities = frame.pop("_probabilities")
    widths = {len(p) for p in probabilities if isinstance(p, list)}
    if len(widths) == 1:
        width = widths.pop()
        classes = _classes(given_or_default(client), model, sorted(set(frame["version"])), width)
        matrix = [p if isinstance(p, list) else [None] * width for p in probabilities]
        proba = pd.DataFrame(matrix, columns=[f"proba_{c}" for c in classes], index=frame.index)
        at = frame.columns.get_loc("prediction") + 1
        frame = pd.concat([frame.iloc[:, :at], proba, frame.iloc[:, at:]], axis=1)
    frame["at"] = pd.to_datetime(frame["at"], unit="s", utc=True)
    frame["feedback_at"] = pd.to_datetime(frame["feedback_at"], unit="s", utc=True)
    return frame


def _classes(client: Client, model: str, versions: list[int], width: int) -> list[Any]:
    """The class names of the logged versions, or their positions when unknown or mixed."""
    found = []
    for number in versions:
        try:
            record = client.model_version(f"{model}@{int(number)}")
        except LoopmlError:
            continue
        found.append(list((record.output_schema or {}).get("classes") or []))
    if found and all(c == found[0] and len(c) == width for c in found):
        return found[0]
    return list(range(width))


def _seconds(value: datetime | float | str | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidParameterError(f"predictions {what}: got {value!r}; expected a time.")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidParameterError(
                f"predictions {what}: got {value!r}; expected ISO 8601 text such as "
                "'2026-11-01' or '2026-11-01T12:00:00+00:00', a datetime or Unix seconds."
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    raise InvalidParameterError(
        f"predictions {what}: got {type(value).__name__}; expected a datetime, Unix seconds or "
        "ISO 8601 text."
    )
