"""Metric points, params and tags: validated, then written in batches.

Semantics (documented in docs/tracking.md, tested by R15):

- A metric point is ``(run, key, step) -> value``. Logging the same step again replaces
  the value (last write wins); the series never holds two values for one step.
- Steps are integers in ``[-2**63, 2**63 - 1]``; anything else is rejected.
- NaN and ±Inf are stored and returned as such (NaN is NULL in the table); filters never
  match NaN.
- Timestamps are taken as given, even in the future.
- ``latest_metrics`` holds, per key, the value at the highest step: what filters and sorts use.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from loopml.errors import InvalidParameterError
from loopml.store import schema as s
from loopml.store.engine import Database
from loopml.store.records import MetricPoint

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_KEY = 250

Point = tuple[str, int, float, float]  # key, step, value, timestamp


def check_key(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY or "\x00" in key:
        raise InvalidParameterError(
            f"{kind} name {key!r}: expected a non-empty string of at most {MAX_KEY} characters "
            "without NUL characters."
        )
    return key


def check_text(kind: str, key: str, text: str) -> str:
    """Reject values no backend can store (PostgreSQL text cannot hold NUL)."""
    if "\x00" in text:
        raise InvalidParameterError(
            f"{kind} {key!r}: got a value containing a NUL character; remove it."
        )
    return text


def check_point(key: object, value: object, step: object, timestamp: object) -> Point:
    """Validate one metric point; raises InvalidParameterError naming the problem."""
    # Fast path for the common exact types: numbers.Real/Integral are ABCs, and their
    # isinstance checks cost more than the rest of logging a point.
    if (
        type(key) is str
        and 0 < len(key) <= MAX_KEY
        and "\x00" not in key
        and (type(value) is float or type(value) is int)
        and type(step) is int
        and INT64_MIN <= step <= INT64_MAX
        and (type(timestamp) is float or type(timestamp) is int)
        and math.isfinite(timestamp)
    ):
        return (key, step, float(value), float(timestamp))
    name = check_key("Metric", key)
    if not isinstance(value, numbers.Real):
        raise InvalidParameterError(
            f"Metric {name!r}: got value {value!r} of type {type(value).__name__}; expected a number."
        )
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidParameterError(f"Metric {name!r}: got step {step!r}; expected an integer.")
    if not INT64_MIN <= int(step) <= INT64_MAX:
        raise InvalidParameterError(
            f"Metric {name!r}: step {step} is outside the 64-bit range [-2**63, 2**63 - 1]."
        )
    if (
        isinstance(timestamp, bool)
        or not isinstance(timestamp, numbers.Real)
        or not math.isfinite(timestamp)
    ):
        raise InvalidParameterError(
            f"Metric {name!r}: got timestamp {timestamp!r}; expected Unix seconds as a finite number, e.g. time.time()."
        )
    return (name, int(step), float(value), float(timestamp))


def param_value(value: Any) -> tuple[str, float | None]:
    """A param's stored text and, when it is a finite number, its numeric value for filters."""
    if isinstance(value, bool):
        return ("true" if value else "false"), float(value)
    if isinstance(value, numbers.Real):
        num = float(value)
        return (repr(value) if isinstance(value, float) else str(value)), (
            num if math.isfinite(num) else None
        )
    text = value if isinstance(value, str) else repr(value)
    return text, None


class Metrics:
    """Metric, param and tag writes and reads of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def write_batch(
        self,
        run_id: str,
        points: Sequence[Point] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Write points, params and tags in one transaction (retried as a whole)."""
        params = dict(params or {})
        tags = dict(tags or {})
        if not points and not params and not tags:
            return
        qmark = self.db.is_sqlite
        metric_sql = _upsert_sql(
            "metrics",
            ("run_id", "key", "step", "value", "timestamp"),
            ("run_id", "key", "step"),
            ("value", "timestamp"),
            qmark,
        )
        latest_sql = _upsert_sql(
            "latest_metrics",
            ("run_id", "key", "step", "value"),
            ("run_id", "key"),
            ("step", "value"),
            qmark,
            guard="excluded.step >= latest_metrics.step",
        )
        param_sql = _upsert_sql(
            "params", ("run_id", "key", "value", "num"), ("run_id", "key"), ("value", "num"), qmark
        )
        tag_sql = _upsert_sql(
            "tags", ("run_id", "key", "value"), ("run_id", "key"), ("value",), qmark
        )
        metric_rows = [
            (run_id, k, st, None if math.isnan(v) else v, ts) for k, st, v, ts in _dedupe(points)
        ]
        latest: dict[str, tuple[int, float]] = {}
        for k, st, v, _ in points:
            if k not in latest or st >= latest[k][0]:
                latest[k] = (st, v)
        latest_rows = [
            (run_id, k, st, None if math.isnan(v) else v) for k, (st, v) in latest.items()
        ]
        param_rows = [(run_id, check_key("Param", k), *param_value(v)) for k, v in params.items()]
        tag_rows = [(run_id, check_key("Tag", k), str(v)) for k, v in tags.items()]

        def write(conn: Connection) -> None:
            for sql, rows in (
                (metric_sql, metric_rows),
                (latest_sql, latest_rows),
                (param_sql, param_rows),
                (tag_sql, tag_rows),
            ):
                if rows:
                    conn.exec_driver_sql(sql, rows)

        self.db.write(write)

    def history(self, run_id: str, key: str) -> list[MetricPoint]:
        """All points of one series, sorted by step."""
        rows = self.db.read(
            lambda c: c.execute(
                sa.select(s.metrics.c.step, s.metrics.c.value, s.metrics.c.timestamp)
                .where(s.metrics.c.run_id == run_id, s.metrics.c.key == key)
                .order_by(s.metrics.c.step)
            ).all()
        )
        return [
            MetricPoint(int(st), float("nan") if v is None else float(v), float(ts))
            for st, v, ts in rows
        ]

    def keys(self, run_id: str) -> list[str]:
        return list(
            self.db.read(
                lambda c: (
                    c.execute(
                        sa.select(s.latest_metrics.c.key)
                        .where(s.latest_metrics.c.run_id == run_id)
                        .order_by(s.latest_metrics.c.key)
                    )
                    .scalars()
                    .all()
                )
            )
        )

    def count(self, run_id: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(s.metrics)
        if run_id is not None:
            q = q.where(s.metrics.c.run_id == run_id)
        return int(self.db.read(lambda c: c.execute(q).scalar() or 0))


def _dedupe(points: Iterable[Point]) -> list[Point]:
    """Keep the last point per (key, step): one statement may not upsert a row twice on PostgreSQL."""
    last: dict[tuple[str, int], Point] = {}
    for p in points:
        last[(p[0], p[1])] = p
    return list(last.values())


def _upsert_sql(
    table: str,
    columns: tuple[str, ...],
    key: tuple[str, ...],
    update: tuple[str, ...],
    qmark: bool,
    guard: str | None = None,
) -> str:
    # Written by hand (fixed identifiers, bound values) because executemany through the
    # driver is ~5x faster than SQLAlchemy's insertmanyvalues for 10k-row metric batches.
    marks = ", ".join(["?" if qmark else "%s"] * len(columns))
    sets = ", ".join(f"{c} = excluded.{c}" for c in update)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
    )
    return sql + (f" WHERE {guard}" if guard else "")
