"""``/monitors``: every monitor and its status; ``/monitors/<name>``: its charts, newest
windows, alerts with what their actions did, and the writer's Run now, Pause and Resume;
``/monitors/<name>/windows/<start>``: one window's drift report.

Everything is read from what the engine stored (``loopml.monitoring``): a page computes no
statistics. The charts are those of ``loopml monitor report`` (``monitoring.report.charts``,
inline SVG that escapes its own texts), over the newest ``WINDOWS`` windows.

The buttons are forms posted to this page's routes with the writer role, calling the same
functions as ``loopml monitor run|pause|resume`` and ``POST /api/monitors/{name}/…``. Run
now evaluates in the request (a worker thread: routes declared ``def`` run in Starlette's
thread pool), which takes seconds for a few windows, then comes back to the page with what
it did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from loopml.errors import NotFoundError
from loopml.server.api.limits import MAX_INDEX
from loopml.server.api.monitors import MonitorName, monitor_info
from loopml.server.auth import Principal
from loopml.server.ui import page_router, session
from loopml.server.ui.render import render, url

if TYPE_CHECKING:
    from starlette.responses import HTMLResponse

    from loopml.monitoring.monitors import MonitorInfo
    from loopml.store.monitors import AlertRecord, WindowRecord
    from loopml.tracking.client import Client

router = page_router()

#: Windows drawn in the charts and listed in the table of a monitor's page (newest).
WINDOWS = 50
#: Alerts listed on a monitor's page (newest window first); read to mark the windows too.
ALERTS = 50
#: Alerts read to mark each listed window with the rules that fired on it.
WINDOW_ALERTS = 1000
DONE = {
    "paused": "paused: no window is evaluated until it is resumed.",
    "resumed": "resumed: the windows it missed are evaluated at its next run.",
}
Writer = Annotated[Principal, Depends(session.writer)]


def span(seconds: float) -> str:
    """``3600`` → ``1h``; what ``loopml monitor add --window`` takes."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def start_key(start: float) -> str:
    """A window's start as its page's path segment: ``1700000000`` (a fraction if any)."""
    return str(int(start)) if float(start).is_integer() else repr(float(start))


def href(name: str, start: float | None = None) -> str:
    base = f"/monitors/{name}"  # monitor names are [A-Za-z0-9_.-]: nothing to quote
    return base if start is None else f"{base}/windows/{start_key(start)}"


@dataclass(frozen=True)
class WindowRow:
    """One line of the windows table: the window, its summary cells, the rules that fired."""

    window: WindowRecord
    cells: tuple[str, ...]
    rules: list[str]


def actions(alert: AlertRecord) -> list[tuple[str, str, str]]:
    """What an alert's actions did, as ``(kind, text, link)``: the webhook, the retrain run,
    the promotion."""
    done: list[tuple[str, str, str]] = []
    if alert.notify_error:
        done.append(("error", f"webhook failed: {alert.notify_error}", ""))
    elif alert.notified_at:
        done.append(("ok", "webhook sent", ""))
    if alert.run_id:
        done.append(("run", f"retrain run {alert.run_id[:8]}", f"/runs/{alert.run_id}"))
    if alert.promotion:
        kind = "ok" if alert.promotion.get("promoted") else "refused"
        done.append((kind, str(alert.promotion.get("summary", "")), ""))
    return done


def value(alert: AlertRecord) -> str:
    v = alert.value
    if v is None:
        return "–"
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def summaries(client: Client) -> list[MonitorInfo]:
    """Every monitor with its last window and alert count (``loopml monitors``)."""
    from loopml.monitoring import list_monitors

    return list_monitors(client)


@router.get("/monitors")
def monitors_page(request: Request) -> HTMLResponse:
    client: Client = request.app.state.loopml.client
    return render(
        request,
        "monitors/list.html",
        title="Monitors",
        monitors=summaries(client),
        span=span,
        href=href,
    )


def window_rows(windows: Sequence[WindowRecord], fired: Sequence[AlertRecord]) -> list[WindowRow]:
    """The table's rows, newest first, each with the rules that fired on it."""
    from loopml.monitoring.summary import window_rows as cells

    by_window: dict[float, list[str]] = {}
    for a in fired:
        by_window.setdefault(a.window_start, []).append(a.rule)
    rows = [
        WindowRow(w, c, sorted(by_window.get(w.start, [])))
        for w, c in zip(windows, cells(windows), strict=True)
    ]
    return list(reversed(rows))


@router.get("/monitors/{name}")
def monitor_page(
    request: Request,
    name: MonitorName,
    done: Annotated[str, Query(max_length=20)] = "",
    evaluated: Annotated[int, Query(ge=0, le=MAX_INDEX)] = 0,
    fired: Annotated[int, Query(ge=0, le=MAX_INDEX)] = 0,
) -> HTMLResponse:
    from loopml.monitoring import get_monitor
    from loopml.monitoring.report import charts
    from loopml.monitoring.summary import window_label

    client: Client = request.app.state.loopml.client
    record = get_monitor(name, client=client)  # NotFoundError: a 404 page naming the known
    store = client.metadata.monitors
    windows = list(reversed(store.windows(name, limit=WINDOWS, newest_first=True)))
    alerts = store.alerts(name, limit=WINDOW_ALERTS)
    if done == "run":
        notice = (
            f"ran: {evaluated:,} window{'s' if evaluated != 1 else ''} evaluated, {fired:,} new "
            f"alert{'s' if fired != 1 else ''}."
        )
    else:
        notice = DONE.get(done, "")
    newest = windows[-1] if windows else None
    return render(
        request,
        "monitors/detail.html",
        title=f"Monitor {name}",
        info=monitor_info(client, record),
        r=record,
        charts={k: Markup(svg) for k, svg in charts(windows).items()},
        rows=window_rows(windows, alerts),
        alerts=alerts[:ALERTS],
        more_alerts=len(alerts) > ALERTS,
        newest=newest,
        newest_drift=newest is not None and bool(newest.stats.get("drift")),
        notice=notice,
        span=span,
        href=href,
        actions=actions,
        value=value,
        model_name=record.model.partition("@")[0],
        window_label=window_label,
    )


@router.get("/monitors/{name}/windows/{start}")
def window_page(
    request: Request,
    name: MonitorName,
    start: Annotated[float, Path(ge=0, le=253_402_300_800.0, allow_inf_nan=False)],
) -> HTMLResponse:
    from loopml.data.drift_html import report_html
    from loopml.data.drift_report import DriftReport
    from loopml.monitoring import get_monitor
    from loopml.monitoring.summary import window_label
    from loopml.monitoring.summary import window_rows as cells

    client: Client = request.app.state.loopml.client
    record = get_monitor(name, client=client)
    store = client.metadata.monitors
    found = store.windows(name, since=start, limit=1)
    if not found or found[0].start != start:
        newest = store.windows(name, limit=3, newest_first=True)
        known = ", ".join(
            f"{window_label(w.start, w.end)} UTC ({start_key(w.start)})" for w in newest
        )
        raise NotFoundError(
            f"Monitor {name!r} has no evaluated window starting at {start_key(start)}. "
            + (f"Its newest windows: {known}." if known else "It has no window evaluated yet.")
            + f" The monitor's page lists them: {href(name)}."
        )
    window = found[0]
    drift = window.stats.get("drift")
    return render(
        request,
        "monitors/window.html",
        title=f"Monitor {name}: window {window_label(window.start, window.end)}",
        r=record,
        w=window,
        cells=cells([window])[0],
        label=window_label(window.start, window.end),
        report=Markup(report_html(DriftReport.from_dict(drift))) if drift else None,
        alerts=store.alerts(name, window_start=window.start),
        quality=worst_quality(window.stats.get("quality") or {}),
        href=href,
        actions=actions,
        value=value,
        window_label=window_label,
    )


def _share(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def worst_quality(quality: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The features' quality rows, the most missing or out-of-range values first."""
    return sorted(
        quality.items(),
        key=lambda kv: (
            -(_share(kv[1].get("missing")) + _share(kv[1].get("out_of_range"))),
            kv[0],
        ),
    )


@router.post("/monitors/{name}/run")
def run_now(request: Request, name: MonitorName, who: Writer) -> Any:
    """Evaluate the closed windows not evaluated yet, judge the rules, act; back to the page."""
    from loopml.monitoring import run_monitor

    report = run_monitor(name, client=request.app.state.loopml.client)
    if report.paused:
        return RedirectResponse(url(href(name), done="paused"), status_code=303)
    target = url(href(name), done="run", evaluated=len(report.evaluated), fired=len(report.alerts))
    return RedirectResponse(target, status_code=303)


def _pause(request: Request, name: str, paused: bool, who: Principal) -> Any:
    from loopml.monitoring import set_paused

    client = request.app.state.loopml.client
    set_paused(name, paused, by=who.audit_name, client=client)  # NotFoundError: a 404 page
    done = "paused" if paused else "resumed"
    return RedirectResponse(url(href(name), done=done), status_code=303)


@router.post("/monitors/{name}/pause")
def pause(request: Request, name: MonitorName, who: Writer) -> Any:
    return _pause(request, name, True, who)


@router.post("/monitors/{name}/resume")
def resume(request: Request, name: MonitorName, who: Writer) -> Any:
    return _pause(request, name, False, who)
