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

from loopml.errors import InvalidParameterError
from loopml.store.engine import Database, Tx
from loopml.store.records import MetricPoint
from loopml.store.runs import CHUNK, chunks, require_running
from loopml.store.validate import MAX_KEY, check_key, storable_text  # noqa: F401 (re-exported)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Point = tuple[str, int, float, float]  # key, step, value, timestamp

# Keys already checked in this process: logging a point must stay cheap (R01: >= 200k/s).
_good_keys: set[str] = set()


def check_point(key: object, value: object, step: object, timestamp: object) -> Point:
    """Validate one metric point; raises InvalidParameterError naming the problem."""
    # Fast path for the common exact types: numbers.Real/Integral are ABCs, and their
    # isinstance checks cost more than the rest of logging a point.
    if (
        key in _good_keys
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
    if len(_good_keys) < 100_000:
        _good_keys.add(name)
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


class Checked(tuple[str, "float | None"]):
    """A param value already checked and converted (by the writer at the call): (text, number)."""


def param_row(key: object, value: Any) -> tuple[str, str, float | None]:
    """(key, stored text, number) of one param, checked: what ``log_param`` buffers."""
    if type(value) is Checked and type(key) is str:
        return key, value[0], value[1]
    name = check_key("Param", key)
    text, num = param_value(value)
    return name, storable_text("Param", name, text), num


def tag_row(key: object, value: Any) -> tuple[str, str]:
    name = check_key("Tag", key)
    return name, storable_text("Tag", name, str(value))


_METRIC_SQL = (
    "INSERT INTO metrics (run_id, key, step, value, timestamp) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, key, step) DO UPDATE SET value = excluded.value, "
    "timestamp = excluded.timestamp"
)
_LATEST_SQL = (
    "INSERT INTO latest_metrics (run_id, key, step, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, value = excluded.value "
    "WHERE excluded.step >= latest_metrics.step"
)
_PARAM_SQL = (
    "INSERT INTO params (run_id, key, value, num) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, num = excluded.num"
)
_TAG_SQL = (
    "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
)


class Metrics:
    """Metric, param and tag writes and reads of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def batch_writer(
        self,
        run_id: str,
        points: Sequence[Point] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        guarded: bool = True,
    ) -> Any:
        """A function writing one batch inside a transaction (for ``Runs.finish``).

        ``points`` must come from :func:`check_point`; params and tags are checked here.
        The run must still be running: a run that was swept as crashed refuses further
        writes (``LeaseLostError``). ``guarded=False`` skips that check for a caller that
        made it already in the same transaction (``Runs.finish``).
        """
        metric_rows = [
            (run_id, k, st, None if math.isnan(v) else v, ts) for k, st, v, ts in _dedupe(points)
        ]
        latest: dict[str, tuple[int, float]] = {}
        for k, st, v, _ in points:
            if k not in latest or st >= latest[k][0]:
                latest[k] = (st, v)
        # Sorted: concurrent batches of one run then lock its latest_metrics rows in one
        # order, so they wait for each other instead of deadlocking (R02).
        latest_rows = [
            (run_id, k, st, None if math.isnan(v) else v) for k, (st, v) in sorted(latest.items())
        ]
        param_rows = [(run_id, *param_row(k, v)) for k, v in (params or {}).items()]
        tag_rows = [(run_id, *tag_row(k, v)) for k, v in (tags or {}).items()]

        def write(tx: Tx) -> None:
            if guarded:
                require_running(tx, run_id)
            tx.executemany(_METRIC_SQL, metric_rows)
            tx.executemany(_LATEST_SQL, latest_rows)
            tx.executemany(_PARAM_SQL, param_rows)
            tx.executemany(_TAG_SQL, tag_rows)

        return write

    def write_batch(
        self,
        run_id: str,
        points: Sequence[Point] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write points, params and tags in one transaction (retried as a whole)."""
        if not points and not params and not tags:
            return
        self.db.write(self.batch_writer(run_id, points, params, tags))

    def history(self, run_id: str, key: str) -> list[MetricPoint]:
        """All points of one series, sorted by step."""
        return self.histories(run_id, [key]).get(key, [])

    def histories(
        self, run_id: str, keys: Sequence[str], *, min_points: int = 1
    ) -> dict[str, list[MetricPoint]]:
        """Series of several keys in one query per chunk; keys with fewer points are left out."""
        found: dict[str, list[MetricPoint]] = {}
        for chunk in chunks(list(keys), CHUNK):

            def read(tx: Tx, chunk: list[str] = chunk) -> list[tuple[Any, ...]]:
                marks = tx.marks(len(chunk))
                wanted = chunk
                if min_points > 1:
                    wanted = [
                        r[0]
                        for r in tx.all(
                            f"SELECT key FROM metrics WHERE run_id = ? AND key IN ({marks}) "
                            "GROUP BY key HAVING COUNT(*) >= ?",
                            (run_id, *chunk, min_points),
                        )
                    ]
                    if not wanted:
                        return []
                return tx.all(
                    "SELECT key, step, value, timestamp FROM metrics WHERE run_id = ? "
                    f"AND key IN ({tx.marks(len(wanted))}) ORDER BY key, step",
                    (run_id, *wanted),
                )

            for key, st, v, ts in self.db.read(read):
                found.setdefault(key, []).append(
                    MetricPoint(int(st), float("nan") if v is None else float(v), float(ts))
                )
        return found

    def page(self, run_id: str, key: str, *, step_from: int, limit: int) -> list[MetricPoint]:
        """At most ``limit`` points of one series with ``step >= step_from``, by step."""
        rows = self.db.read(
            lambda tx: tx.all(
                "SELECT step, value, timestamp FROM metrics WHERE run_id = ? AND key = ? "
                "AND step >= ? ORDER BY step LIMIT ?",
                (run_id, key, step_from, limit),
            )
        )
        return [
            MetricPoint(int(st), float("nan") if v is None else float(v), float(ts))
            for st, v, ts in rows
        ]

    def span(self, run_id: str, key: str) -> tuple[int, int, int]:
        """(number of points, first step, last step) of one series; (0, 0, 0) if it has none."""
        row = self.db.read(
            lambda tx: tx.one(
                "SELECT COUNT(*), MIN(step), MAX(step) FROM metrics WHERE run_id = ? AND key = ?",
                (run_id, key),
            )
        )
        if row is None or not row[0]:
            return 0, 0, 0
        return int(row[0]), int(row[1]), int(row[2])

    def summaries(
        self, run_id: str, *, limit: int, offset: int = 0
    ) -> list[tuple[str, int, float, int]]:
        """(key, last step, last value, number of points) per series, by key."""
        rows = self.db.read(
            lambda tx: tx.all(
                "SELECT l.key, l.step, l.value, (SELECT COUNT(*) FROM metrics m "
                "WHERE m.run_id = l.run_id AND m.key = l.key) FROM latest_metrics l "
                "WHERE l.run_id = ? ORDER BY l.key LIMIT ? OFFSET ?",
                (run_id, limit, offset),
            )
        )
        return [
            (str(k), int(st), float("nan") if v is None else float(v), int(n))
            for k, st, v, n in rows
        ]

    def keys(self, run_id: str) -> list[str]:
        return [
            str(r[0])
            for r in self.db.read(
                lambda tx: tx.all(
                    "SELECT key FROM latest_metrics WHERE run_id = ? ORDER BY key", (run_id,)
                )
            )
        ]

    def count(self, run_id: str | None = None) -> int:
        if run_id is None:
            return int(self.db.read(lambda tx: tx.scalar("SELECT COUNT(*) FROM metrics")) or 0)
        return int(
            self.db.read(
                lambda tx: tx.scalar("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (run_id,))
            )
            or 0
        )


def _dedupe(points: Iterable[Point]) -> list[Point]:
    """Keep the last point per (key, step): one statement may not upsert a row twice on PostgreSQL."""
    last: dict[tuple[str, int], Point] = {}
    for p in points:
        last[(p[0], p[1])] = p
    return list(last.values())
