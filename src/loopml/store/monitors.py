"""Monitors, their evaluated windows and their alerts (see migration 0009 for the tables).

An alert is one ``(monitor, rule, window_start)`` row; the table's unique constraint is what
makes each rule fire once per window, however many schedulers evaluate the same window at
the same time. The process whose insert won owns the alert's actions under a lease
(``owner``, ``lease_until``); if it dies before ``acted_at`` is set, another process takes
the alert over once the lease has run out and does what is left (each action records its
own outcome, so a webhook already sent or a run already started is not repeated).
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import ConflictError, NotFoundError
from loopml.store.engine import Database, Tx

_MONITOR_COLUMNS = (
    "name, model, reference, window_s, every_s, origin, rules, rules_path, actions, target, "
    "paused, created_at, updated_at, updated_by"
)
_WINDOW_COLUMNS = "monitor, start_at, end_at, row_count, label_count, stats, evaluated_at"
_ALERT_COLUMNS = (
    "id, monitor, rule, window_start, window_end, fired_at, value, message, owner, lease_until, "
    "notified_at, notify_error, run_id, promotion, acted_at"
)


@dataclass(frozen=True, slots=True)
class MonitorRecord:
    """A monitor as stored; ``actions`` is ``{"notify": [url…], "retrain": pipeline|None,
    "auto_promote": bool}``."""

    name: str
    model: str
    reference: str
    window_s: float
    every_s: float
    origin: float
    rules: str
    rules_path: str = ""
    actions: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    paused: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    updated_by: str = ""

    def _row(self) -> tuple[Any, ...]:
        return (
            self.name,
            self.model,
            self.reference,
            self.window_s,
            self.every_s,
            self.origin,
            self.rules,
            self.rules_path,
            json.dumps(self.actions, sort_keys=True),
            self.target,
            self.paused,
            self.created_at,
            self.updated_at,
            self.updated_by,
        )


def _monitor(row: tuple[Any, ...]) -> MonitorRecord:
    values = list(row)
    values[8] = json.loads(values[8])
    values[10] = bool(values[10])
    return MonitorRecord(*values)


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """One evaluated window: ``[start, end)`` by prediction time, and its statistics."""

    monitor: str
    start: float
    end: float
    rows: int
    labels: int
    stats: dict[str, Any]
    evaluated_at: float


def _window(row: tuple[Any, ...]) -> WindowRecord:
    values = list(row)
    values[5] = json.loads(values[5])
    return WindowRecord(*values)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A rule that fired on a window, and what its actions did."""

    id: int
    monitor: str
    rule: str
    window_start: float
    window_end: float
    fired_at: float
    value: float | None
    message: str
    owner: str | None = None
    lease_until: float | None = None
    notified_at: float | None = None
    notify_error: str | None = None
    run_id: str | None = None
    promotion: dict[str, Any] | None = None
    acted_at: float | None = None


def _alert(row: tuple[Any, ...]) -> AlertRecord:
    values = list(row)
    values[13] = json.loads(values[13]) if values[13] else None
    return AlertRecord(*values)


class Monitors:
    """The monitors of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- definitions ------------------------------------------------------------------------

    def add(self, record: MonitorRecord, *, replace: bool = False) -> None:
        """Store ``record``; an existing name is a ConflictError unless ``replace``."""

        def write(tx: Tx) -> None:
            found = tx.one("SELECT created_at FROM monitors WHERE name = ?", (record.name,))
            if found is not None and not replace:
                raise ConflictError(
                    f"Monitor {record.name!r} exists already. Pick another name, or replace it "
                    f"with `loopml monitor add {record.name} … --replace` (its windows and "
                    "alerts are kept)."
                )
            row = record._row()
            if found is None:
                marks = ", ".join("?" * len(row))
                tx.execute(f"INSERT INTO monitors ({_MONITOR_COLUMNS}) VALUES ({marks})", row)
            else:
                sets = ", ".join(f"{c.strip()} = ?" for c in _MONITOR_COLUMNS.split(",")[1:])
                tx.execute(
                    f"UPDATE monitors SET {sets} WHERE name = ?",
                    (*row[1:11], float(found[0]), *row[12:], record.name),
                )

        self.db.write(write)

    def get(self, name: str) -> MonitorRecord:
        row = self.db.read(
            lambda tx: tx.one(f"SELECT {_MONITOR_COLUMNS} FROM monitors WHERE name = ?", (name,))
        )
        if row is None:
            known = [m.name for m in self.list()]
            from loopml.errors import did_you_mean

            raise NotFoundError(
                f"Monitor {name!r}: not found.{did_you_mean(name, known)} "
                f"Monitors: {known or 'none yet (loopml monitor add NAME --model MODEL@ALIAS …)'}."
            )
        return _monitor(row)

    def list(self) -> builtins.list[MonitorRecord]:
        rows = self.db.read(
            lambda tx: tx.all(f"SELECT {_MONITOR_COLUMNS} FROM monitors ORDER BY name")
        )
        return [_monitor(r) for r in rows]

    def remove(self, name: str) -> None:
        self.get(name)

        def write(tx: Tx) -> None:
            # The foreign keys cascade on PostgreSQL; SQLite may have them off: delete in order.
            tx.execute("DELETE FROM monitor_alerts WHERE monitor = ?", (name,))
            tx.execute("DELETE FROM monitor_windows WHERE monitor = ?", (name,))
            tx.execute("DELETE FROM monitors WHERE name = ?", (name,))

        self.db.write(write)

    def set_paused(self, name: str, paused: bool, *, at: float, by: str) -> None:
        self.get(name)
        self.db.write(
            lambda tx: tx.execute(
                "UPDATE monitors SET paused = ?, updated_at = ?, updated_by = ? WHERE name = ?",
                (paused, at, by, name),
            )
        )

    # -- windows ----------------------------------------------------------------------------

    def save_window(self, window: WindowRecord) -> None:
        """Store a window's statistics, replacing an earlier evaluation of it."""
        row = (
            window.monitor,
            window.start,
            window.end,
            window.rows,
            window.labels,
            json.dumps(window.stats, sort_keys=True, allow_nan=False),
            window.evaluated_at,
        )

        def write(tx: Tx) -> None:
            tx.execute(
                f"INSERT INTO monitor_windows ({_WINDOW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (monitor, start_at) DO UPDATE SET end_at = excluded.end_at, "
                "row_count = excluded.row_count, label_count = excluded.label_count, "
                "stats = excluded.stats, evaluated_at = excluded.evaluated_at",
                row,
            )

        self.db.write(write)

    def windows(
        self,
        monitor: str,
        *,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> builtins.list[WindowRecord]:
        """Evaluated windows of ``monitor`` whose start lies in ``[since, until)``; ``offset``
        skips that many of them first (the REST API's pages)."""
        where: builtins.list[str] = ["monitor = ?"]
        params: builtins.list[Any] = [monitor]
        if since is not None:
            where.append("start_at >= ?")
            params.append(since)
        if until is not None:
            where.append("start_at < ?")
            params.append(until)
        sql = (
            f"SELECT {_WINDOW_COLUMNS} FROM monitor_windows WHERE {' AND '.join(where)} "
            f"ORDER BY start_at {'DESC' if newest_first else 'ASC'}"
        )
        if limit is not None or offset:
            # SQLite takes OFFSET only after a LIMIT; 2**62 windows is "no limit".
            sql += f" LIMIT {int(limit) if limit is not None else 2**62}"
        if offset:
            sql += f" OFFSET {int(offset)}"
        return [_window(r) for r in self.db.read(lambda tx: tx.all(sql, params))]

    def window_counts(self, monitor: str) -> dict[float, tuple[int, int]]:
        """``{start: (rows, labels)}`` of every evaluated window (no statistics read)."""
        rows = self.db.read(
            lambda tx: tx.all(
                "SELECT start_at, row_count, label_count FROM monitor_windows WHERE monitor = ?",
                (monitor,),
            )
        )
        return {float(r[0]): (int(r[1]), int(r[2])) for r in rows}

    # -- alerts -----------------------------------------------------------------------------

    def fire(
        self,
        monitor: str,
        rule: str,
        window: tuple[float, float],
        *,
        value: float | None,
        message: str,
        owner: str,
        now: float,
        lease_s: float,
    ) -> AlertRecord | None:
        """Record that ``rule`` fired on ``window``; None if it fired there already."""

        def write(tx: Tx) -> AlertRecord | None:
            # Checked first: the foreign key's ConflictError would read as "fired already".
            if tx.one("SELECT 1 FROM monitors WHERE name = ?", (monitor,)) is None:
                raise NotFoundError(f"Monitor {monitor!r}: not found; no alert recorded.")
            inserted = tx.execute(
                "INSERT INTO monitor_alerts (monitor, rule, window_start, window_end, fired_at, "
                "value, message, owner, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (monitor, rule, window_start) DO NOTHING",
                (monitor, rule, window[0], window[1], now, value, message, owner, now + lease_s),
            )
            if not inserted:
                return None
            row = tx.one(
                f"SELECT {_ALERT_COLUMNS} FROM monitor_alerts WHERE monitor = ? AND rule = ? "
                "AND window_start = ?",
                (monitor, rule, window[0]),
            )
            return None if row is None else _alert(row)

        try:
            return self.db.write(write)
        except ConflictError:  # another scheduler inserted the same alert at the same moment
            return None

    def alerts(
        self,
        monitor: str | None = None,
        *,
        window_start: float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[AlertRecord]:
        """Alerts, newest window first."""
        where: builtins.list[str] = []
        params: builtins.list[Any] = []
        if monitor is not None:
            where.append("monitor = ?")
            params.append(monitor)
        if window_start is not None:
            where.append("window_start = ?")
            params.append(window_start)
        sql = f"SELECT {_ALERT_COLUMNS} FROM monitor_alerts"
        if where:
            sql += f" WHERE {' AND '.join(where)}"
        sql += f" ORDER BY window_start DESC, id DESC LIMIT {int(limit)} OFFSET {int(offset)}"
        return [_alert(r) for r in self.db.read(lambda tx: tx.all(sql, params))]

    def alert(self, alert_id: int) -> AlertRecord:
        row = self.db.read(
            lambda tx: tx.one(
                f"SELECT {_ALERT_COLUMNS} FROM monitor_alerts WHERE id = ?", (alert_id,)
            )
        )
        if row is None:
            raise NotFoundError(f"Alert {alert_id}: not found.")
        return _alert(row)

    def take_over(self, owner: str, *, now: float, lease_s: float) -> builtins.list[AlertRecord]:
        """Alerts whose actions are unfinished and whose owner's lease ran out, now ``owner``'s."""

        def write(tx: Tx) -> builtins.list[AlertRecord]:
            ids = [
                int(r[0])
                for r in tx.all(
                    "SELECT id FROM monitor_alerts WHERE acted_at IS NULL AND "
                    "(lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT 100",
                    (now,),
                )
            ]
            taken: builtins.list[AlertRecord] = []
            for alert_id in ids:
                if tx.execute(
                    "UPDATE monitor_alerts SET owner = ?, lease_until = ? WHERE id = ? AND "
                    "acted_at IS NULL AND (lease_until IS NULL OR lease_until < ?)",
                    (owner, now + lease_s, alert_id, now),
                ):
                    row = tx.one(
                        f"SELECT {_ALERT_COLUMNS} FROM monitor_alerts WHERE id = ?", (alert_id,)
                    )
                    if row is not None:
                        taken.append(_alert(row))
            return taken

        return self.db.write(write)

    def update_alert(self, alert_id: int, owner: str, **values: Any) -> bool:
        """Set ``values`` on an alert this ``owner`` holds; False when it holds it no more."""
        allowed = {"notified_at", "notify_error", "run_id", "promotion", "acted_at", "lease_until"}
        unknown = set(values) - allowed
        if unknown or not values:
            raise ValueError(
                f"update_alert: got {sorted(values)}; expected some of {sorted(allowed)}."
            )
        if "promotion" in values and values["promotion"] is not None:
            values["promotion"] = json.dumps(values["promotion"], sort_keys=True)
        sets = ", ".join(f"{k} = ?" for k in values)
        return bool(
            self.db.write(
                lambda tx: tx.execute(
                    f"UPDATE monitor_alerts SET {sets} WHERE id = ? AND owner = ?",
                    (*values.values(), alert_id, owner),
                )
            )
        )

    def open_alert_counts(self) -> dict[str, int]:
        """``{monitor: alerts fired}`` over every monitor."""
        rows = self.db.read(
            lambda tx: tx.all("SELECT monitor, COUNT(*) FROM monitor_alerts GROUP BY monitor")
        )
        return {str(r[0]): int(r[1]) for r in rows}
