"""``/pipelines`` and ``/pipelines/<name>``: each pipeline's history and its schedules.

A pipeline is known from three places: its stored runs (``Client.run_counts``, one pass over
an index), the project's ``@pipeline`` functions when the server can import them (what
``GET /api/pipelines`` lists) and the schedules that name it. Nothing here loads all runs:
a summary reads the latest ``RECENT`` runs of each pipeline, the history page its latest
``HISTORY`` runs and one page of the table (``pipeline = 'NAME'`` sorted by run number, which
the store answers from its ``(pipeline, number)`` index).

The schedule buttons (pause, resume, run now) are forms posted to this page's routes with
the writer role; they call ``loopml.scheduler.schedules``, as ``loopml schedule pause``
and ``POST /api/schedules/{name}/pause`` do.
"""

from __future__ import annotations

import inspect
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Path, Query, Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from loopml.errors import LoopmlError, NotFoundError
from loopml.server.auth import Principal
from loopml.server.ui import page_router, session
from loopml.server.ui.render import render, url
from loopml.server.ui.session import viewer
from loopml.store.status import FINAL_RUN_STATUSES, RunStatus

if TYPE_CHECKING:
    from datetime import tzinfo

    from starlette.responses import HTMLResponse

    from loopml.pipelines.pipeline import Pipeline
    from loopml.scheduler.schedules import ScheduleInfo
    from loopml.store.records import RunRecord
    from loopml.tracking.client import Client

router = page_router()

RECENT = 20  # runs behind a pipeline's success rate and median duration in the lists
HISTORY = 100  # runs in the charts of the history page
PAGE = 20
MAX_PAGE = 200
MAX_PIPELINES = 200
FIRES = 10
DONE = {
    "paused": "paused: it will not fire until it is resumed.",
    "resumed": "resumed: it fires again from its next due time.",
    "run-now": "will run now: a manual fire is pending; the scheduler of `loopml server` "
    "(or `loopml scheduler`) starts it at its next tick.",
}
UNITS = (("seconds", 1.0, 180.0), ("minutes", 60.0, 3 * 3600.0), ("hours", 3600.0, math.inf))
PipelineName = Annotated[str, Path(max_length=200)]
ScheduleName = Annotated[str, Path(max_length=100)]


def quoted(text: str) -> str:
    """``text`` as a string of the filter language (quotes and backslashes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def href(name: str) -> str:
    return "/pipelines/" + quote(name, safe="")


def recent_runs(client: Client, name: str, limit: int = RECENT, offset: int = 0) -> list[RunRecord]:
    """The latest runs of pipeline ``name``, newest first."""
    return client.search_runs(
        f"pipeline = {quoted(name)}", "number desc", limit=limit, offset=offset
    )


def discovered(client: Client) -> dict[str, Pipeline]:
    """The project's pipelines when the server can import them (else none: runs still show)."""
    from loopml.pipelines.discovery import load_pipelines

    try:
        return load_pipelines(client.settings)
    except LoopmlError:
        return {}


def schedules(client: Client) -> list[ScheduleInfo]:
    """Every schedule with its next fire (reads never apply loopml.toml, as in the API)."""
    from loopml.scheduler import schedules as lib

    return lib.list_schedules(client, sync=False)


@dataclass
class Summary:
    """What the lists show of one pipeline."""

    name: str
    runs: int
    recent: list[RunRecord]
    schedules: list[ScheduleInfo] = field(default_factory=list)
    description: str = ""
    registered: bool = False

    @property
    def href(self) -> str:
        return href(self.name)

    @property
    def last(self) -> RunRecord | None:
        return self.recent[0] if self.recent else None

    @property
    def finished(self) -> list[RunRecord]:
        return [r for r in self.recent if r.status in FINAL_RUN_STATUSES]

    @property
    def succeeded(self) -> int:
        return sum(1 for r in self.finished if r.status == RunStatus.SUCCEEDED)

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / len(self.finished) if self.finished else None

    @property
    def median_duration(self) -> float | None:
        values = [r.duration_s for r in self.finished if r.duration_s is not None]
        return statistics.median(values) if values else None

    @property
    def next_fire(self) -> float | None:
        times = [s.next_fire for s in self.schedules if s.next_fire is not None]
        return min(times) if times else None

    @property
    def next_schedule(self) -> str | None:
        fire = self.next_fire
        return next((s.record.name for s in self.schedules if s.next_fire == fire), None)


def summaries(client: Client, *, recent: int = RECENT) -> list[Summary]:
    """Every known pipeline (runs, project, schedules), by name, with its latest runs."""
    counts = client.run_counts()
    found = discovered(client)
    infos = schedules(client)
    names = sorted(set(counts) | set(found) | {s.record.pipeline for s in infos})
    return [
        _summary(client, name, counts.get(name, 0), found.get(name), infos, recent)
        for name in names[:MAX_PIPELINES]
    ]


def _summary(
    client: Client,
    name: str,
    count: int,
    pipeline: Pipeline | None,
    infos: list[ScheduleInfo],
    recent: int,
) -> Summary:
    return Summary(
        name=name,
        runs=count,
        recent=recent_runs(client, name, recent) if count else [],
        schedules=[s for s in infos if s.record.pipeline == name],
        description=(inspect.getdoc(pipeline.fn) or "").split("\n\n")[0] if pipeline else "",
        registered=pipeline is not None,
    )


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


@router.get("/pipelines")
def pipelines_page(request: Request) -> HTMLResponse:
    client = request.app.state.loopml.client
    return render(
        request,
        "pipelines/list.html",
        title="Pipelines",
        pipelines=summaries(client),
        recent=RECENT,
        percent=percent,
    )


@router.get("/pipelines/{name}")
def pipeline_page(
    request: Request,
    name: PipelineName,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    done: Annotated[str, Query(max_length=20)] = "",
    schedule: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    from loopml.pipelines.discovery import describe

    client = request.app.state.loopml.client
    counts = client.run_counts()
    found = discovered(client)
    infos = schedules(client)
    pipeline = found.get(name)
    mine = [s for s in infos if s.record.pipeline == name]
    if name not in counts and pipeline is None and not mine:
        known = sorted(set(counts) | set(found))
        raise NotFoundError(
            f"No pipeline {name!r}: no run, no @pipeline of the project and no schedule has "
            f"this name. Known pipelines: {', '.join(known) or 'none yet'}."
        )
    history = recent_runs(client, name, HISTORY) if name in counts else []
    summary = Summary(name, counts.get(name, 0), history, mine, registered=pipeline is not None)
    if pipeline is not None:
        summary.description = inspect.getdoc(pipeline.fn) or ""
    page = recent_runs(client, name, limit + 1, offset) if name in counts else []
    tz = viewer(request).tz
    charts = history_charts(history, tz, client.settings.prices.currency)
    from loopml.scheduler import schedules as lib

    fires = {s.record.name: lib.fires(client, s.record.name, limit=FIRES) for s in mine}
    return render(
        request,
        "pipelines/detail.html",
        title=f"Pipeline {name}",
        p=summary,
        charts=charts,
        total_cost=sum(r.cost for r in history if r.cost is not None),
        params=describe(pipeline) if pipeline is not None else None,
        runs=page[:limit],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if len(page) > limit else None,
        schedules=mine,
        fires=fires,
        done=DONE.get(done),
        done_schedule=schedule,
        percent=percent,
        quote=lambda text: quote(text, safe=""),
        quoted=quoted(name),
    )


def history_charts(runs: list[RunRecord], tz: tzinfo, currency: str) -> list[Markup]:
    """Duration and cost of ``runs`` over time (the SVG escapes its texts)."""
    from loopml.server.ui.render import duration
    from loopml.tracking.cost import format_cost
    from loopml.tracking.timeline import Point, timeline_svg

    def points(value: Callable[[RunRecord], float | None]) -> list[Point]:
        return [
            Point(r.started_at, v, r.label, str(r.status), f"/runs/{r.id}")
            for r in runs
            if (v := value(r)) is not None
        ]

    durations = points(lambda r: r.duration_s)
    longest = max((p.value for p in durations), default=0.0)
    unit, scale = next((u, s) for u, s, top in UNITS if longest < top or top == math.inf)
    return [
        Markup(
            timeline_svg(
                f"Duration of the last {len(runs)} runs",
                durations,
                tz=tz,
                ylabel=unit,
                yformat=duration,
                scale=scale,
            )
        ),
        Markup(
            timeline_svg(
                f"Cost of the last {len(runs)} runs",
                points(lambda r: r.cost),
                tz=tz,
                ylabel=currency,
                yformat=lambda c: format_cost(c, currency),
            )
        ),
    ]


Writer = Annotated[Principal, Depends(session.writer)]


def _change(request: Request, name: str, schedule: str, action: str, who: Principal) -> Any:
    """Pause, resume or fire ``schedule`` of pipeline ``name``, then back to its page."""
    from loopml.scheduler import schedules as lib

    client = request.app.state.loopml.client
    record = lib.get(client, schedule).record  # NotFoundError: an HTML 404
    if record.pipeline != name:
        raise NotFoundError(
            f"Schedule {schedule!r} runs pipeline {record.pipeline!r}, not {name!r}."
        )
    if action == "paused":
        lib.pause(client, schedule, by=who.audit_name)
    elif action == "resumed":
        lib.resume(client, schedule, by=who.audit_name)
    else:
        lib.run_now(client, schedule, by=who.audit_name)
    target = url(href(name), done=action, schedule=schedule)
    return RedirectResponse(target + "#schedules", status_code=303)


@router.post("/pipelines/{name}/schedules/{schedule}/pause")
def pause(request: Request, name: PipelineName, schedule: ScheduleName, who: Writer) -> Any:
    return _change(request, name, schedule, "paused", who)


@router.post("/pipelines/{name}/schedules/{schedule}/resume")
def resume(request: Request, name: PipelineName, schedule: ScheduleName, who: Writer) -> Any:
    return _change(request, name, schedule, "resumed", who)


@router.post("/pipelines/{name}/schedules/{schedule}/run-now")
def run_now(request: Request, name: PipelineName, schedule: ScheduleName, who: Writer) -> Any:
    return _change(request, name, schedule, "run-now", who)
