"""Evaluating a monitor: which windows, their statistics, the rules, then the actions.

``run_monitor(name)`` evaluates every closed window not evaluated yet, and evaluates again
a window whose prediction or label count changed since (late feedback updates old windows:
the live metrics are by prediction time). Then it judges the rules on each evaluated
window in time order and records an alert per rule that holds — once per rule and window,
by the store's unique constraint, so two schedulers evaluating the same window at once
fire it once. The process that recorded an alert does its actions (``actions.py``).

Any number of processes may run the same monitor at the same time: windows are written
with an upsert of the same statistics, and alerts are unique.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError, LoopmlError
from loopml.monitoring.monitors import _client, check_name, split_model
from loopml.store.monitors import AlertRecord, MonitorRecord, WindowRecord

if TYPE_CHECKING:
    import pandas as pd

    from loopml.monitoring.rules import Rule
    from loopml.tracking.client import Client

log = logging.getLogger(__name__)

#: How long an alert's actions stay with the process that recorded it without a renewal.
LEASE_S = 300.0
#: Windows whose counts are checked again for late labels (the newest ones).
RECHECK_WINDOWS = 400
#: The most windows one run evaluates (a backfill over years at 1-minute windows stops here).
MAX_WINDOWS = 100_000


@dataclass
class MonitorRun:
    """What one ``run_monitor`` did."""

    monitor: str
    evaluated: list[WindowRecord] = field(default_factory=list)
    up_to_date: int = 0
    alerts: list[AlertRecord] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    paused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "paused": self.paused,
            "evaluated": [
                {"start": w.start, "end": w.end, "rows": w.rows, "labels": w.labels}
                for w in self.evaluated
            ],
            "up_to_date": self.up_to_date,
            "alerts": [alert_json(a) for a in self.alerts],
            "actions": self.actions,
        }

    def _repr_html_(self) -> str:
        """In a notebook: what was evaluated, as charts and tables."""
        import html

        from loopml.monitoring.report import fragment

        head = (
            f"<p><b>Monitor {html.escape(self.monitor)}</b>: "
            + ("paused, nothing evaluated" if self.paused else
               f"{len(self.evaluated)} window(s) evaluated, {self.up_to_date} up to date, "
               f"{len(self.alerts)} new alert(s)")
            + "</p>"
        )  # fmt: skip
        return head + fragment(sorted(self.evaluated, key=lambda w: w.start), self.alerts)


def alert_json(a: AlertRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "monitor": a.monitor,
        "rule": a.rule,
        "window_start": a.window_start,
        "window_end": a.window_end,
        "fired_at": a.fired_at,
        "value": a.value if a.value is None or math.isfinite(a.value) else str(a.value),
        "message": a.message,
        "notified_at": a.notified_at,
        "notify_error": a.notify_error,
        "run_id": a.run_id,
        "promotion": a.promotion,
        "acted_at": a.acted_at,
    }


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}/{os.urandom(3).hex()}"


def window_starts(record: MonitorRecord, since: float, until: float) -> list[float]:
    """Starts of the windows that begin at or after ``since`` and have closed by ``until``."""
    first = math.ceil((since - record.origin) / record.every_s - 1e-9)
    last = math.floor((until - record.window_s - record.origin) / record.every_s + 1e-9)
    if last < first:
        return []
    if last - first + 1 > MAX_WINDOWS:
        raise InvalidParameterError(
            f"Monitor {record.name!r}: {last - first + 1:,} windows to evaluate; at most "
            f"{MAX_WINDOWS:,} per run. Give a later --from, or a longer --window."
        )
    return [record.origin + k * record.every_s for k in range(first, last + 1)]


def run_monitor(
    name: str,
    *,
    since: float | None = None,
    until: float | None = None,
    owner: str | None = None,
    wait: bool = False,
    progress: Callable[[int, int], None] | None = None,
    keep_lease: bool = False,
    client: Client | None = None,
) -> MonitorRun:
    """Evaluate the windows of ``name`` that need it, judge the rules, act on new alerts.

    Args:
        since: evaluate windows from here (default: the monitor's origin); a backfill.
        until: evaluate windows closed by then (default: now).
        owner: who does the actions of the alerts this run records (default: this process).
        wait: wait for the retrain runs started and apply ``--auto-promote`` before returning.
        progress: called with ``(done, total)`` windows.
        keep_lease: keep the alerts whose follow-up is pending (a scheduler, which runs
            again); a one-off run hands them back so the next run of anyone takes them.
    """
    from loopml.monitoring.actions import act, follow_up

    c = _client(client)
    store = c.metadata.monitors
    record = store.get(check_name(name))
    report = MonitorRun(monitor=name)
    owner = owner or owner_name()
    if record.paused:
        report.paused = True
        return report
    now = time.time() if until is None else until
    starts = window_starts(record, record.origin if since is None else since, now)
    known = store.window_counts(name)
    model, _ = split_model(record.model)
    todo = []
    recheck = set(starts[-RECHECK_WINDOWS:])
    for s in starts:
        if s not in known:
            todo.append(s)
        elif (
            s in recheck
            and c.metadata.predictions.window_counts(model, s, s + record.window_s) != known[s]
        ):
            todo.append(s)  # late predictions or late labels
        else:
            report.up_to_date += 1
    context = _Context(c, record)
    for i, s in enumerate(todo):
        window = context.evaluate(s)
        store.save_window(window)
        report.evaluated.append(window)
        if progress is not None:
            progress(i + 1, len(todo))
    fired = judge(c, record, report.evaluated, owner=owner)
    report.alerts = fired
    for alert in fired:
        report.actions += act(c, record, alert, owner=owner)
    # Alerts whose owner died (or left) with actions undone, and retrains to follow up.
    for alert in store.take_over(owner, now=time.time(), lease_s=LEASE_S):
        if alert.monitor == name:
            report.actions += act(c, store.get(alert.monitor), alert, owner=owner)
        else:
            store.update_alert(alert.id, owner, lease_until=0.0)  # leave it to its monitor
    report.actions += follow_up(c, record, owner=owner, wait=wait)
    if not keep_lease:
        for alert in store.alerts(name, limit=1000):
            if alert.owner == owner and alert.acted_at is None:
                store.update_alert(alert.id, owner, lease_until=0.0)
    return report


def run_due(client: Client, *, owner: str) -> list[MonitorRun]:
    """Run every monitor that is not paused (what a scheduler does every minute)."""
    c = _client(client)
    done = []
    for record in c.metadata.monitors.list():
        if record.paused:
            continue
        try:
            done.append(run_monitor(record.name, owner=owner, keep_lease=True, client=c))
        except LoopmlError as exc:  # a monitor that cannot run now (no version…): say so
            log.error("monitor %s: %s", record.name, exc)
    return done


def periodic(client: Client, *, owner: str, every_s: float = 60.0) -> Any:
    """The scheduler's job that runs the monitors every ``every_s`` seconds."""
    from loopml.scheduler.loop import Periodic

    return Periodic("monitors", every_s, lambda: run_due(client, owner=owner))


def judge(
    c: Client, record: MonitorRecord, evaluated: list[WindowRecord], *, owner: str
) -> list[AlertRecord]:
    """Record the alerts of the rules that hold on ``evaluated`` windows (once each)."""
    from loopml.monitoring.rules import rules_of

    if not evaluated:
        return []
    rules = rules_of(record)
    store = c.metadata.monitors
    longest = max(r.windows for r in rules)
    first = min(w.start for w in evaluated)
    history = {
        w.start: w
        for w in store.windows(record.name, since=first - longest * record.every_s - 1e-6)
    }
    fired = []
    for window in sorted(evaluated, key=lambda w: w.start):
        history[window.start] = window
        features = list(window.stats.get("features") or [])
        for rule in rules:
            found = _holds(rule, record, window, history, features)
            if not found:
                continue
            value = rule.worst(found)
            alert = store.fire(
                record.name,
                rule.name,
                (window.start, window.end),
                value=value,
                message=_message(record, rule, window, found),
                owner=owner,
                now=time.time(),
                lease_s=LEASE_S,
            )
            if alert is not None:
                fired.append(alert)
    return fired


def _holds(
    rule: Rule,
    record: MonitorRecord,
    window: WindowRecord,
    history: dict[float, WindowRecord],
    features: list[str],
) -> dict[str, float]:
    """The subjects meeting ``rule`` in ``window`` and its ``rule.windows - 1`` predecessors."""
    found = rule.holds(window.stats, features)
    for k in range(1, rule.windows):
        if not found:
            break
        before = history.get(window.start - k * record.every_s)
        if before is None:
            return {}
        earlier = rule.holds(before.stats, features)
        found = {s: v for s, v in found.items() if s in earlier}
    return found


def _message(
    record: MonitorRecord, rule: Rule, window: WindowRecord, found: dict[str, float]
) -> str:
    from datetime import UTC, datetime

    def fmt(v: float) -> str:
        return f"{v:.4g}"

    when = datetime.fromtimestamp(window.start, UTC).strftime("%Y-%m-%d %H:%M")
    span = f" in {rule.windows} windows" if rule.windows > 1 else ""
    if rule.feature == "*" or (rule.feature and rule.feature != rule.quantity):
        what = ", ".join(
            f"{rule.quantity}({k!r}) = {fmt(v)}"
            for k, v in sorted(found.items(), key=lambda kv: kv[0])[:10]
        )
    else:
        what = ", ".join(f"{rule.quantity} = {fmt(v)}" for v in found.values())
    return (
        f"{record.name} ({record.model}), window {when} UTC, {window.rows:,} predictions: "
        f"rule {rule.name} [{rule.text}]: {what} ({rule.condition}{span})"
    )


class _Context:
    """What evaluating windows of one monitor needs once: the model, the reference."""

    def __init__(self, c: Client, record: MonitorRecord) -> None:
        self.c = c
        self.record = record
        self.model, self.alias = split_model(record.model)
        self._reference: Any = None
        self._reference_key: str | None = None
        self._calibration: Any = None
        self._version: Any = None
        from loopml.monitoring.rules import rules_of

        self.feature_rules = [r for r in rules_of(record) if r.feature is not None]

    def version(self) -> Any:
        """The version the watched reference serves now (looked up once per run)."""
        if self._version is None:
            self._version = self._lookup()
        return self._version

    def _lookup(self) -> Any:
        aliases = self.c.model_aliases(self.model)
        if self.alias is not None:
            if self.alias not in aliases:
                raise InvalidParameterError(
                    f"Monitor {self.record.name!r}: alias {self.record.model} points at no "
                    "version (promote one first)."
                )
            return self.c.model_version(f"{self.model}@{aliases[self.alias]}")
        return self.c.model_versions(self.model)[-1]

    def reference(self, start: float, version: Any) -> tuple[pd.DataFrame, str]:
        """The reference of the window starting at ``start``, answered by ``version``."""
        ref = self.record.reference
        if ref == "previous":
            frame = self.window_frame(start - self.record.window_s, start)
            return frame, f"the window before ({len(frame):,} rows)"
        if ref == "training":
            if not version.datasets:
                raise InvalidParameterError(
                    f"Monitor {self.record.name!r}: reference 'training', but "
                    f"{version.label} was registered without its training data. Register "
                    "versions with datasets=[…], or give --reference DATASET@N."
                )
            ref = version.datasets[0]
        if self._reference_key != ref:
            from loopml.data.datasets import Dataset

            self._reference = Dataset(ref).frame(self.c)
            self._reference_key = ref
        return self._reference, ref

    def window_frame(self, start: float, end: float) -> pd.DataFrame:
        from loopml.monitoring.logread import window_frame

        outputs = self.version().output_schema or {}
        classes = outputs.get("classes") if outputs.get("kind") == "probabilities" else None
        return window_frame(self.c, self.model, start, end, classes)

    def evaluate(self, start: float) -> WindowRecord:
        from loopml.monitoring.stats import window_statistics

        end = start + self.record.window_s
        current = self.window_frame(start, end)
        if len(current) == 0:  # no traffic: nothing to compare, and no reference to read
            empty: dict[str, Any] = {
                "rows": 0,
                "drift": None,
                "quality": {},
                "prediction": {},
                "performance": {},
                "features": [],
                "flagged": {},
                "reference": None,
                "versions": [],
                "rows_per_hour": 0.0,
                "latency_ms": {},
            }
            return WindowRecord(self.record.name, start, end, 0, 0, empty, time.time())
        # The version that answered most of the window's predictions: its training data and
        # its inputs are what the window is judged against, even after the alias moved on.
        version = self.version()
        if len(current) and "version" in current.columns:
            number = int(current["version"].mode().iloc[0])
            if number != version.number:
                version = self.c.model_version(f"{self.model}@{number}")
        reference, reference_label = self.reference(start, version)
        features = _features(version, reference, current)
        outputs = version.output_schema or {}
        classes = outputs.get("classes") if outputs.get("kind") == "probabilities" else None
        target = self.record.target or _target(reference, features)
        has_labels = "label" in current.columns and current["label"].notna().any()
        score = None
        probabilities = None
        if classes:
            columns = {k: f"proba_{k}" for k in classes if f"proba_{k}" in current.columns}
            if len(classes) == 2 and f"proba_{classes[-1]}" in current.columns:
                score = f"proba_{classes[-1]}"
            elif len(columns) == len(classes):
                probabilities = columns
        stats = window_statistics(
            reference,
            _prepare(current, features, classes),
            features=features,
            prediction="prediction" if "prediction" in current.columns else None,
            score=score,
            label="label" if has_labels else None,
            target=target,
            classes=classes,
            probabilities=probabilities,
            calibrate=self.calibration(
                version, reference_label, reference, features, target, classes
            )
            if score
            else None,
        ).to_dict()
        stats["features"] = features
        # Which features the monitor's own rules flag in this window (before persistence):
        # the "flagged" column people read, rather than a fixed drift threshold.
        flagged: dict[str, list[str]] = {}
        for rule in self.feature_rules:
            for subject in rule.holds(stats, features):
                flagged.setdefault(subject, []).append(rule.name)
        stats["flagged"] = flagged
        stats["reference"] = reference_label
        stats["versions"] = sorted({int(v) for v in current.get("version", [])})
        stats["rows_per_hour"] = len(current) / (self.record.window_s / 3600)
        stats["latency_ms"] = _latency(current)
        labels = int(current["label"].notna().sum()) if "label" in current.columns else 0
        return WindowRecord(
            monitor=self.record.name,
            start=start,
            end=end,
            rows=len(current),
            labels=labels,
            stats=stats,
            evaluated_at=time.time(),
        )

    def calibration(
        self,
        version: Any,
        reference_label: str,
        reference: pd.DataFrame,
        features: list[str],
        target: str | None,
        classes: list[Any] | None,
    ) -> Any:
        """Isotonic calibration of the model's scores on the labelled reference, or None."""
        if (
            target is None
            or not classes
            or len(classes) != 2
            or self.record.reference == "previous"
        ):
            return None
        key = (version.label, reference_label)
        if self._calibration is None or self._calibration[0] != key:
            self._calibration = (key, None)
            try:
                from loopml.monitoring.performance import isotonic_calibration
                from loopml.serving.served import load_served

                served = load_served(version.label, runtime="native", client=self.c)
                outputs = served.predict_frame(reference[features])
                if outputs.probabilities is not None:
                    import pyarrow as pa

                    from loopml.monitoring.stats import as_text

                    labels = pa.chunked_array([pa.array(reference[target], from_pandas=True)])
                    y = (as_text(labels) == str(classes[-1])).astype(float)
                    fitted = isotonic_calibration(outputs.probabilities[:, -1], y)
                    self._calibration = (key, fitted)
            except (LoopmlError, ValueError, TypeError) as exc:
                log.warning("monitor %s: no calibration (%s)", self.record.name, exc)
        return self._calibration[1]


def _latency(current: pd.DataFrame) -> dict[str, float]:
    """Percentiles of the request latency the window's predictions saw (``loopml serve``)."""
    if "latency_ms" not in current.columns:
        return {}
    values = current["latency_ms"].dropna().to_numpy(dtype=float)
    if not len(values):
        return {}
    import numpy as np

    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(values.max())}


def _features(version: Any, reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The model's input columns (from its schema), else the columns both tables share."""
    if version.input_schema:
        from loopml.registry.schema import ModelSchema

        names = ModelSchema.from_dict(version.input_schema).names
        return [n for n in names if n in reference.columns]
    skip = {"prediction_id", "at", "version", "variant", "shadow_of", "prediction", "label"}
    skip |= {"feedback_at", "latency_ms"}
    return [
        n
        for n in reference.columns
        if n in current.columns and n not in skip and not str(n).startswith("proba_")
    ]


def _target(reference: pd.DataFrame, features: list[str]) -> str | None:
    """The reference's one column that is not an input: its label."""
    others = [c for c in reference.columns if c not in features]
    return others[0] if len(others) == 1 else None


def _prepare(current: pd.DataFrame, features: list[str], classes: Any) -> pd.DataFrame:
    """Label column without the JSON objects pandas cannot turn into Arrow."""
    frame = current
    if "label" in frame.columns and classes is None:
        import pandas as pd

        frame = frame.assign(label=pd.to_numeric(frame["label"], errors="coerce"))
    for name in features:
        if name not in frame.columns:
            frame = frame.assign(**{name: None})
    return frame
