"""Monitors and the prediction log: list and show monitors with their windows and alerts,
run one now, pause and resume it; page through logged predictions with their feedback.

The same functions as ``loopml monitors`` and ``loopml monitor …`` (``loopml.monitoring``),
with the caller's audit name (``token:NAME``) as who paused or resumed. Reads need the
``reader`` role; running, pausing and resuming a monitor need ``writer``.

Windows and alerts come newest first. A window's ``stats`` are as the engine stored them
(per-feature drift, quality, prediction mix, live and estimated metrics; non-finite numbers
are the strings ``"inf"``/``"nan"``); ``?stats=false`` leaves them out for a light listing.
Times are Unix seconds (UTC).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, Field

from loopml.server.api.deps import Caller, Client
from loopml.server.api.limits import MAX_INDEX, NAME_PATTERN, capped_router
from loopml.server.pages import Page, Paging, page
from loopml.store.validate import MAX_NAME

if TYPE_CHECKING:
    from loopml.monitoring.monitors import MonitorInfo
    from loopml.store.monitors import MonitorRecord, WindowRecord
    from loopml.tracking.client import Client as ClientType

router = capped_router(tags=["monitors"])

#: Windows the monitor detail shows by default, and at most.
DETAIL_WINDOWS = 50
MAX_DETAIL_WINDOWS = 1000
#: Alerts the monitor detail carries (``/alerts`` pages through all of them).
DETAIL_ALERTS = 100
#: Logged predictions per page: by default, and at most.
PREDICTIONS_PAGE = 100
MAX_PREDICTIONS_PAGE = 10_000
#: The latest time a query may name (the year 9999 ends before it).
MAX_TIME = 253_402_300_800.0

MonitorName = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
        max_length=100,
        description="Letters, digits, '_', '.' and '-', starting with a letter or digit.",
    ),
]
Since = Annotated[
    float | None,
    Query(
        ge=0,
        le=MAX_TIME,
        allow_inf_nan=False,
        description="Only from this time on (Unix seconds, UTC; inclusive).",
    ),
]
Until = Annotated[
    float | None,
    Query(
        ge=0,
        le=MAX_TIME,
        allow_inf_nan=False,
        description="Only before this time (Unix seconds, UTC; exclusive).",
    ),
]


class WindowSummary(BaseModel):
    start: float
    end: float
    rows: int
    labels: int


class MonitorOut(BaseModel):
    """A monitor's definition, its last evaluated window, its status and alert count."""

    name: str
    model: str = Field(description="The served reference it watches, `NAME@ALIAS`.")
    reference: str = Field(description="A dataset version, `training` or `previous`.")
    window_s: float
    every_s: float
    origin: float = Field(description="Windows start at origin + k * every_s.")
    rules_path: str
    rules: str = Field(description="The rules TOML it judges windows with.")
    notify: list[str]
    retrain: str | None
    auto_promote: bool
    target: str | None
    paused: bool
    created_at: float
    updated_at: float
    updated_by: str
    status: Literal["waiting", "ok", "alert", "paused"] = Field(
        description="`waiting`: no window evaluated yet; `alert`: a rule fired on the last one."
    )
    alerts: int = Field(description="Every alert the monitor recorded.")
    last_window: WindowSummary | None
    last_alerts: list[str] = Field(description="The rules that fired on the last window.")
    next_window_end: float = Field(description="When the next window closes.")


class WindowOut(BaseModel):
    """One evaluated window ``[start, end)`` by prediction time."""

    start: float
    end: float
    rows: int
    labels: int
    evaluated_at: float
    drifted: list[str] = Field(description="The features the drift verdict flags, worst first.")
    flagged: list[str] = Field(description="The features the monitor's rules flag, worst first.")
    stats: dict[str, Any] | None = Field(description="Null when asked with `stats=false`.")


class AlertOut(BaseModel):
    """A rule that fired on a window, and what its actions did."""

    id: int
    monitor: str
    rule: str
    window_start: float
    window_end: float
    fired_at: float
    value: float | str | None = Field(description="The worst value; `inf`/`nan` as text.")
    message: str
    notified_at: float | None
    notify_error: str | None
    run_id: str | None = Field(description="The retrain run it started.")
    promotion: dict[str, Any] | None = Field(description="What --auto-promote did.")
    acted_at: float | None


class MonitorDetail(MonitorOut):
    windows: list[WindowOut] = Field(description="The newest windows, newest first.")
    recent_alerts: list[AlertOut] = Field(
        description=f"The newest {DETAIL_ALERTS} alerts (page through all with /alerts)."
    )


class EvaluatedWindow(BaseModel):
    start: float
    end: float
    rows: int
    labels: int


class MonitorRunOut(BaseModel):
    """What one run did: the windows evaluated, the new alerts and their actions."""

    monitor: str
    paused: bool = Field(description="True: the monitor is paused and nothing was evaluated.")
    evaluated: list[EvaluatedWindow]
    up_to_date: int = Field(description="Closed windows evaluated before and unchanged since.")
    alerts: list[AlertOut]
    actions: list[str] = Field(description="One line per action (webhook, retrain, promote).")


class PredictionOut(BaseModel):
    """A logged prediction with the label that came back for it, if any."""

    id: str
    model: str
    version: int
    variant: str
    at: float
    inputs: Any = Field(description="The input row as sent to /predict.")
    output: Any = Field(description="What the model answered.")
    shadow_of: str | None = Field(description="A shadow model's row: the answered prediction.")
    label: Any = Field(description="The ground truth sent to /feedback; null until then.")
    feedback_at: float | None


def jsonable(value: Any) -> Any:
    """``value`` with every NaN and infinity as the text ``"nan"``/``"inf"``/``"-inf"``
    (JSON has no spelling for them; the stored statistics use the same texts)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def monitor_info(client: ClientType, record: MonitorRecord) -> MonitorInfo:
    """What ``list_monitors`` says of one monitor, without reading the others."""
    import time

    from loopml.monitoring.monitors import MonitorInfo, next_window_end

    store = client.metadata.monitors
    last = store.windows(record.name, limit=1, newest_first=True)
    fired = store.alerts(record.name, window_start=last[0].start) if last else []
    return MonitorInfo(
        record=record,
        last=last[0] if last else None,
        alerts=store.open_alert_counts().get(record.name, 0),
        last_alerts=[a.rule for a in fired],
        next_window_end=next_window_end(record, time.time()),
    )


def monitor_out(info: MonitorInfo) -> MonitorOut:
    from loopml.monitoring.monitors import describe

    last = info.last
    return MonitorOut(
        **jsonable(describe(info.record)),
        status=info.status,  # type: ignore[arg-type]
        alerts=info.alerts,
        last_window=None
        if last is None
        else WindowSummary(start=last.start, end=last.end, rows=last.rows, labels=last.labels),
        last_alerts=info.last_alerts,
        next_window_end=info.next_window_end,
    )


def window_out(w: WindowRecord, *, stats: bool = True) -> WindowOut:
    from loopml.monitoring.summary import drifted, flagged

    return WindowOut(
        start=w.start,
        end=w.end,
        rows=w.rows,
        labels=w.labels,
        evaluated_at=w.evaluated_at,
        drifted=drifted(w.stats),
        flagged=flagged(w.stats),
        stats=jsonable(w.stats) if stats else None,
    )


def alert_out(a: Any) -> AlertOut:
    from loopml.monitoring.engine import alert_json

    return AlertOut.model_validate(jsonable(alert_json(a)))


@router.get("/monitors", summary="List monitors")
def list_monitors(client: Client, paging: Paging) -> Page[MonitorOut]:
    """Each monitor by name: the model it watches, its windows and rules, its last window,
    its status (`waiting`, `ok`, `alert`, `paused`), its alert count and next window."""
    from loopml.monitoring import list_monitors as lib_list

    found = lib_list(client)[paging.offset : paging.offset + paging.fetch]
    return page([monitor_out(i) for i in found], paging)


@router.get("/monitors/{name}", summary="One monitor with its newest windows and alerts")
def get_monitor(
    name: MonitorName,
    client: Client,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_DETAIL_WINDOWS,
            description=f"Newest windows to include (1 to {MAX_DETAIL_WINDOWS}).",
        ),
    ] = DETAIL_WINDOWS,
) -> MonitorDetail:
    """The definition, the newest `limit` windows with their statistics (newest first) and
    the newest alerts. 404 names the known monitors."""
    from loopml.monitoring import get_monitor as lib_get

    record = lib_get(name, client=client)
    store = client.metadata.monitors
    windows = store.windows(name, limit=limit, newest_first=True)
    return MonitorDetail(
        **monitor_out(monitor_info(client, record)).model_dump(),
        windows=[window_out(w) for w in windows],
        recent_alerts=[alert_out(a) for a in store.alerts(name, limit=DETAIL_ALERTS)],
    )


@router.get("/monitors/{name}/windows", summary="A monitor's evaluated windows, newest first")
def list_windows(
    name: MonitorName,
    client: Client,
    paging: Paging,
    since: Since = None,
    until: Until = None,
    stats: Annotated[
        bool, Query(description="Include each window's statistics (false: counts only).")
    ] = True,
) -> Page[WindowOut]:
    """The windows whose start lies in `[since, until)`, a page at a time."""
    from loopml.monitoring import get_monitor as lib_get

    lib_get(name, client=client)
    found = client.metadata.monitors.windows(
        name,
        since=since,
        until=until,
        limit=paging.fetch,
        offset=paging.offset,
        newest_first=True,
    )
    return page([window_out(w, stats=stats) for w in found], paging)


@router.get("/monitors/{name}/alerts", summary="A monitor's alerts, newest window first")
def list_alerts(name: MonitorName, client: Client, paging: Paging) -> Page[AlertOut]:
    """Rule, window, value, message, and what the actions did (webhook, retrain run,
    promotion)."""
    from loopml.monitoring import alerts

    found = alerts(name, limit=paging.fetch, offset=paging.offset, client=client)
    return page([alert_out(a) for a in found], paging)


@router.post("/monitors/{name}/run", summary="Run a monitor now")
def run(name: MonitorName, client: Client) -> MonitorRunOut:
    """Evaluate its closed windows not evaluated yet (and those whose predictions or labels
    changed since), judge the rules, and act on new alerts, as `loopml monitor run` does.
    Answers when done (seconds for a few windows). A paused monitor evaluates nothing."""
    from loopml.monitoring import run_monitor

    report = run_monitor(name, client=client)
    return MonitorRunOut.model_validate(jsonable(report.to_dict()))


@router.post("/monitors/{name}/pause", summary="Pause a monitor")
def pause(name: MonitorName, client: Client, caller: Caller) -> MonitorOut:
    """No window is evaluated until it is resumed; its windows and alerts stay."""
    from loopml.monitoring import get_monitor as lib_get
    from loopml.monitoring import set_paused

    set_paused(name, True, by=caller.audit_name, client=client)
    return monitor_out(monitor_info(client, lib_get(name, client=client)))


@router.post("/monitors/{name}/resume", summary="Resume a monitor")
def resume(name: MonitorName, client: Client, caller: Caller) -> MonitorOut:
    """Evaluates again, the windows it missed while paused included."""
    from loopml.monitoring import get_monitor as lib_get
    from loopml.monitoring import set_paused

    set_paused(name, False, by=caller.audit_name, client=client)
    return monitor_out(monitor_info(client, lib_get(name, client=client)))


def _parsed(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return jsonable(json.loads(text))
    except ValueError:
        return text  # not JSON (never written so by loopml): shown as stored


@router.get("/predictions", summary="Logged predictions with their feedback", tags=["predictions"])
def list_predictions(
    client: Client,
    model: Annotated[
        str,
        Query(
            pattern=NAME_PATTERN,
            max_length=MAX_NAME,
            description="The registered model whose predictions to list.",
        ),
    ],
    since: Since = None,
    until: Until = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_PREDICTIONS_PAGE,
            description=f"Predictions per page (1 to {MAX_PREDICTIONS_PAGE:,}).",
        ),
    ] = PREDICTIONS_PAGE,
    offset: Annotated[
        int, Query(ge=0, le=MAX_INDEX, description="Predictions to skip (from `next_offset`).")
    ] = 0,
) -> Page[PredictionOut]:
    """Oldest first by prediction time, in `[since, until)`: inputs and output as logged by
    `loopml serve`, and the label that came back through `/feedback` (null until then)."""
    from loopml.server.pages import PageParams
    from loopml.store.models import check_model_name

    check_model_name(model)
    if not client.model_versions(model):
        from loopml.errors import NotFoundError, did_you_mean

        known = sorted(v.name for v in client.models())
        raise NotFoundError(
            f"Model {model!r}: not registered, so it has no logged predictions."
            f"{did_you_mean(model, known)} Registered models: "
            f"{', '.join(known[:20]) + (' …' if len(known) > 20 else '') or 'none yet'}."
        )
    paging = PageParams(limit=limit, offset=offset)
    rows = client.metadata.predictions.query(
        model, since=since, until=until, limit=paging.fetch, offset=offset
    )
    items = [
        PredictionOut(
            id=r.id,
            model=r.model,
            version=r.version,
            variant=r.variant,
            at=r.at,
            inputs=_parsed(r.inputs),
            output=_parsed(r.output),
            shadow_of=r.shadow_of,
            label=_parsed(r.label),
            feedback_at=r.feedback_at,
        )
        for r in rows
    ]
    return page(items, paging)
