"""Defining monitors: what ``loopml monitor add`` checks and stores, and how they are listed.

A monitor watches the predictions logged for one served model reference (``churn@production``)
in windows by prediction time, compares each window with a reference, judges its rules and
acts. Windows start at ``origin + k * every`` and last ``window`` seconds (``every ==
window``: fixed windows; smaller: sliding ones). ``origin`` is aligned to ``every`` in UTC
(a daily monitor's windows start at midnight UTC), from the time the monitor is added;
``loopml monitor backfill --from DATE`` evaluates earlier ones.

The reference is a dataset version (``churn@3``), ``training`` (the datasets the version
under the watched alias was trained on, read when a window is evaluated, so a promotion
moves the reference with the model) or ``previous`` (the window before).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError
from loopml.store.monitors import AlertRecord, MonitorRecord, WindowRecord

if TYPE_CHECKING:
    from loopml.tracking.client import Client

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
REFERENCE_KINDS = ("training", "previous")


@dataclass(frozen=True)
class MonitorInfo:
    """A monitor with its last window and its alert count (``loopml monitors``)."""

    record: MonitorRecord
    last: WindowRecord | None
    alerts: int  # every alert it recorded
    last_alerts: list[str]  # the rules that fired on its last window
    next_window_end: float

    @property
    def status(self) -> str:
        if self.record.paused:
            return "paused"
        if self.last is None:
            return "waiting"
        return "alert" if self.last_alerts else "ok"


def _client(client: Client | None) -> Client:
    from loopml.tracking.client import given_or_default

    return given_or_default(client).open()


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidParameterError(
            f"Monitor name {str(name)[:80]!r}: expected letters, digits, '_', '.' or '-' "
            "(at most 100, starting with a letter or digit), e.g. churn-live."
        )
    return name


def split_model(ref: str) -> tuple[str, str | None]:
    """``"churn@production"`` → ``("churn", "production")``; ``"churn"`` → ``("churn", None)``."""
    from loopml.store.models import check_model_name

    name, _, alias = str(ref).partition("@")
    check_model_name(name)
    if alias.isdigit():
        raise InvalidParameterError(
            f"Monitor model {ref!r}: a monitor watches what an alias serves; give "
            f"{name}@ALIAS (e.g. {name}@production) or {name} (its latest version)."
        )
    return name, alias or None


def add_monitor(
    name: str,
    *,
    model: str,
    reference: str = "training",
    window: str | float = "1d",
    every: str | float | None = None,
    rules: str | Path | None = None,
    retrain: str | None = None,
    notify: Sequence[str] = (),
    auto_promote: bool = False,
    target: str | None = None,
    start: float | None = None,
    replace: bool = False,
    by: str | None = None,
    client: Client | None = None,
) -> MonitorRecord:
    """Define (or with ``replace`` redefine) a monitor; see the module doc.

    Args:
        name: the monitor's name.
        model: the served reference it watches, ``NAME@ALIAS`` (or ``NAME``: the latest).
        reference: a dataset version (``NAME@N``), ``"training"`` or ``"previous"``.
        window: each window's length (``"1d"``, ``"6h"``, seconds).
        every: how often a window starts (default: ``window``, fixed windows).
        rules: a rules TOML file (default: the built-in rules, ``rules.DEFAULT_RULES``).
        retrain: a pipeline to run when a rule with the ``retrain`` action fires.
        notify: webhook URLs that get a Slack-compatible JSON message per alert.
        auto_promote: promote the retrained version to the alias when it passes the gates.
        target: the label column of the reference (default: its one non-input column).
        start: Unix time from which windows are evaluated (default: now).

    Raises:
        InvalidParameterError: a bad name, duration, rules file, URL or option mix.
        NotFoundError: an unknown model, dataset version or pipeline.
        ConflictError: the name exists and ``replace`` is not set.
    """
    from loopml.config import parse_duration
    from loopml.monitoring.rules import DEFAULT_RULES, parse_rules
    from loopml.registry.versions import who

    c = _client(client)
    check_name(name)
    model_name, alias = split_model(model)
    if not c.model_versions(model_name):
        from loopml.errors import NotFoundError, did_you_mean

        known = sorted({v.name for v in c.models()})
        raise NotFoundError(
            f"Monitor model {model!r}: no model {model_name!r} is registered."
            f"{did_you_mean(model_name, known)} Models: {known or 'none yet'}."
        )
    window_s = parse_duration(window, what="Monitor window") or 0.0
    every_s = parse_duration(every, what="Monitor --every") if every is not None else window_s
    assert every_s is not None
    if every_s > window_s:
        raise InvalidParameterError(
            f"Monitor --every {every!r} is longer than --window {window!r}: windows would leave "
            "gaps. Use --every <= --window (equal: fixed windows; shorter: sliding ones)."
        )
    _check_reference(c, reference)
    if reference == "training":
        aliases = c.model_aliases(model_name)
        if alias is not None and alias not in aliases:
            raise InvalidParameterError(
                f"Monitor model {model!r}: alias {alias!r} points at no version of "
                f"{model_name} (aliases: {sorted(aliases) or 'none'}). Promote one first: "
                f"loopml promote {model_name} N --to {alias}."
            )
        number = aliases[alias] if alias is not None else c.model_versions(model_name)[-1].number
        version = c.model_version(f"{model_name}@{number}")
        if not version.datasets:
            raise InvalidParameterError(
                f"Monitor reference 'training': {version.label} was registered without its "
                "training data (register it inside a run that reads a dataset version, "
                "loopml.dataset('NAME@N')). Give --reference DATASET@N (a table with the "
                "model's inputs) or --reference previous instead."
            )
    if rules is None:
        text, rules_path = DEFAULT_RULES, ""
    else:
        path = Path(rules)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InvalidParameterError(
                f"Monitor rules {str(path)!r}: cannot read it ({exc.strerror or exc})."
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidParameterError(
                f"Monitor rules {str(path)!r}: not UTF-8 text (byte {exc.start}); save it as UTF-8."
            ) from None
        rules_path = str(path)
    parse_rules(text, path=rules_path or "default rules")  # every error before anything is stored
    urls = [_check_url(u) for u in notify]
    if retrain is not None:
        _check_pipeline(c, retrain)
    if auto_promote and (retrain is None or alias is None):
        raise InvalidParameterError(
            "--auto-promote promotes the retrained version to the alias the monitor watches: "
            "it needs --on-alert retrain:PIPELINE and a model given as NAME@ALIAS."
        )
    now = time.time()
    origin = start if start is not None else now
    origin = (origin // every_s) * every_s
    if replace:
        try:
            origin = min(origin, c.metadata.monitors.get(name).origin)
        except LookupError:
            pass
    record = MonitorRecord(
        name=name,
        model=model,
        reference=reference,
        window_s=window_s,
        every_s=every_s,
        origin=origin,
        rules=text,
        rules_path=rules_path,
        actions={"notify": urls, "retrain": retrain, "auto_promote": bool(auto_promote)},
        target=target,
        paused=False,
        created_at=now,
        updated_at=now,
        updated_by=by or who(),
    )
    c.metadata.monitors.add(record, replace=replace)
    return record


def _check_reference(c: Client, reference: str) -> None:
    if reference in REFERENCE_KINDS:
        return
    if "@" not in str(reference):
        raise InvalidParameterError(
            f"Monitor reference {reference!r}: expected a dataset version (NAME@N or "
            "NAME@latest), 'training' (the model's training data) or 'previous' (the window "
            "before)."
        )
    version = c.dataset_version(reference)  # NotFoundError names it
    if version.format not in ("csv", "parquet", "jsonl"):
        raise InvalidParameterError(
            f"Monitor reference {reference!r}: a {version.format} {version.kind}; a reference "
            "must be a table (CSV, Parquet or JSON lines)."
        )


def _check_url(url: object) -> str:
    from urllib.parse import urlsplit

    text = str(url)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameterError(
            f"Monitor --notify {text[:200]!r}: expected an http:// or https:// URL (a Slack "
            "incoming webhook, or any endpoint that takes a JSON POST)."
        )
    return text


def _check_pipeline(c: Client, pipeline: str) -> None:
    from loopml.pipelines.discovery import find_pipeline

    find_pipeline(c.settings, pipeline)  # NotFoundError lists the project's pipelines


def list_monitors(client: Client | None = None) -> list[MonitorInfo]:
    """Every monitor with its last evaluated window and its number of alerts."""
    c = _client(client)
    store = c.metadata.monitors
    counts = store.open_alert_counts()
    out = []
    for record in store.list():
        last = store.windows(record.name, limit=1, newest_first=True)
        fired = store.alerts(record.name, window_start=last[0].start) if last else []
        out.append(
            MonitorInfo(
                record=record,
                last=last[0] if last else None,
                alerts=counts.get(record.name, 0),
                last_alerts=[a.rule for a in fired],
                next_window_end=next_window_end(record, time.time()),
            )
        )
    return out


def next_window_end(record: MonitorRecord, now: float) -> float:
    """When the next window not yet closed closes."""
    k = max(0, int((now - record.origin - record.window_s) // record.every_s) + 1)
    return record.origin + k * record.every_s + record.window_s


def get_monitor(name: str, client: Client | None = None) -> MonitorRecord:
    return _client(client).metadata.monitors.get(check_name(name))


def remove_monitor(name: str, client: Client | None = None) -> None:
    """Remove a monitor with its windows and alerts (retrain runs it started stay)."""
    _client(client).metadata.monitors.remove(check_name(name))


def set_paused(
    name: str, paused: bool, *, by: str | None = None, client: Client | None = None
) -> None:
    from loopml.registry.versions import who

    _client(client).metadata.monitors.set_paused(
        check_name(name), paused, at=time.time(), by=by or who()
    )


def windows(
    name: str,
    *,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = None,
    client: Client | None = None,
) -> list[WindowRecord]:
    """The evaluated windows of a monitor, oldest first."""
    c = _client(client)
    c.metadata.monitors.get(check_name(name))
    return c.metadata.monitors.windows(name, since=since, until=until, limit=limit)


def alerts(
    name: str | None = None, *, limit: int = 100, offset: int = 0, client: Client | None = None
) -> list[AlertRecord]:
    """Alerts, newest window first (of one monitor, or of all)."""
    c = _client(client)
    if name is not None:
        c.metadata.monitors.get(check_name(name))
    return c.metadata.monitors.alerts(name, limit=limit, offset=offset)


def describe(record: MonitorRecord) -> dict[str, Any]:
    """A monitor's definition as JSON (the CLI's ``--json`` and the REST API)."""
    return {
        "name": record.name,
        "model": record.model,
        "reference": record.reference,
        "window_s": record.window_s,
        "every_s": record.every_s,
        "origin": record.origin,
        "rules_path": record.rules_path,
        "rules": record.rules,
        "notify": record.actions.get("notify", []),
        "retrain": record.actions.get("retrain"),
        "auto_promote": bool(record.actions.get("auto_promote")),
        "target": record.target,
        "paused": record.paused,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "updated_by": record.updated_by,
    }
