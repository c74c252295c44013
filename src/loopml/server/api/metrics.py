"""A run's metrics: every series with its last value, and one series' history.

The history is **downsampled by default** so a chart of a million-step series costs one
small answer: the step range ``[first, last]`` is cut into ``(max_points - 2) // 2`` equal
buckets and each bucket keeps its lowest and its highest point (a bucket holding only NaN
keeps its first point), plus the series' first and last points. So every spike and dip
survives, the answer has at most ``max_points`` points, and they are real points (never
averages). The series is read a page at a time, so memory stays bounded.

Full resolution comes only page by page: pass ``step_from`` (and ``limit``) and follow
``next_step_from`` until it is null; every point comes exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from loopml.server.api.deps import Client
from loopml.server.api.limits import MAX_INDEX, CappedRoute, RunRef, finite
from loopml.server.pages import DEFAULT_LIMIT, MAX_LIMIT, Page, Paging, page
from loopml.store.records import MetricPoint

router = APIRouter(tags=["runs"], route_class=CappedRoute)

DEFAULT_POINTS = 1000
MAX_POINTS = 5000
_READ_CHUNK = 20_000
_STEP = MAX_INDEX


class MetricSummary(BaseModel):
    key: str
    last_step: int
    last_value: float | None
    points: int


@router.get("/runs/{run}/metrics", summary="A run's metric series: last value and point count")
def run_metrics(client: Client, run: RunRef, paging: Paging) -> Page[MetricSummary]:
    """Series by key; ``points`` says how long each history is."""
    rows = client.metric_summaries(run, limit=paging.fetch, offset=paging.offset)
    return page(
        [MetricSummary(key=k, last_step=s, last_value=finite(v), points=n) for k, s, v, n in rows],
        paging,
    )


class PointOut(BaseModel):
    step: int
    value: float | None
    timestamp: float


class Series(BaseModel):
    run_id: str
    key: str
    points: list[PointOut]
    downsampled: bool
    total_points: int | None
    next_step_from: int | None


def _points(points: list[MetricPoint]) -> list[PointOut]:
    return [PointOut(step=p.step, value=finite(p.value), timestamp=p.timestamp) for p in points]


def downsample(
    points: Iterator[MetricPoint], first: int, last: int, max_points: int
) -> list[MetricPoint]:
    """At most ``max_points`` points of a series sorted by step (see the module doc)."""
    buckets = max(1, (max_points - 2) // 2)
    span = last - first + 1
    kept: dict[int, list[MetricPoint | None]] = {}  # bucket -> [low, high, first]
    head: MetricPoint | None = None
    tail: MetricPoint | None = None
    for p in points:
        head = head or p
        tail = p
        b = (p.step - first) * buckets // span
        slot = kept.get(b)
        if slot is None:
            slot = kept[b] = [None, None, p]
        if not math.isnan(p.value):
            low, high = slot[0], slot[1]
            if low is None or p.value < low.value:
                slot[0] = p
            if high is None or p.value > high.value:
                slot[1] = p
    chosen: dict[int, MetricPoint] = {}
    for low, high, start in kept.values():
        for q in (low, high) if low is not None else (start,):
            if q is not None:
                chosen[q.step] = q
    for q in (head, tail):
        if q is not None:
            chosen[q.step] = q
    return [chosen[s] for s in sorted(chosen)]


@router.get(
    "/runs/{run}/metrics/{key:path}", summary="One metric's history (downsampled by default)"
)
def metric_history(
    client: Client,
    run: RunRef,
    key: Annotated[str, Path(min_length=1, max_length=250, description="The metric's key.")],
    max_points: Annotated[
        int,
        Query(
            ge=3,
            le=MAX_POINTS,
            description=f"Downsample to at most this many points (3 to {MAX_POINTS}).",
        ),
    ] = DEFAULT_POINTS,
    step_from: Annotated[
        int | None,
        Query(
            ge=-_STEP,
            le=_STEP,
            description="Full resolution: the points from this step on, one page at a time.",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_LIMIT,
            description=f"Points per full-resolution page (default {DEFAULT_LIMIT}).",
        ),
    ] = None,
) -> Series:
    """Downsampled unless ``step_from`` or ``limit`` asks for full resolution (see the
    module doc: min and max per step bucket, plus the first and last point)."""
    run_id = client.resolve_run(run)
    if step_from is not None or limit is not None:
        size = limit or DEFAULT_LIMIT
        start = step_from if step_from is not None else -_STEP
        got = client.metric_page(run_id, key, step_from=start, limit=size + 1)
        if not got and not client.metric_page(run_id, key, step_from=-_STEP, limit=1):
            _missing(client, run_id, key)
        more = len(got) > size
        return Series(
            run_id=run_id,
            key=key,
            points=_points(got[:size]),
            downsampled=False,
            total_points=None,
            next_step_from=got[size].step if more else None,
        )
    points, count = bounded_series(client, run_id, key, max_points)
    if count == 0:
        _missing(client, run_id, key)
    return Series(
        run_id=run_id,
        key=key,
        points=_points(points),
        downsampled=count > max_points,
        total_points=count,
        next_step_from=None,
    )


def bounded_series(
    client: Any, run_id: str, key: str, max_points: int
) -> tuple[list[MetricPoint], int]:
    """A series of at most ``max_points`` points (downsampled as the module doc says, read a
    page at a time) and how many points it has in the store (0: no such series). The API
    route and the web UI's run page both draw from here."""
    count, first, last = client.metric_span(run_id, key)
    if count == 0:
        return [], 0

    def stream() -> Iterator[MetricPoint]:
        start = -_STEP
        while True:
            chunk = client.metric_page(run_id, key, step_from=start, limit=_READ_CHUNK)
            yield from chunk
            if len(chunk) < _READ_CHUNK:
                return
            start = chunk[-1].step + 1

    if count <= max_points:
        return list(stream()), count
    return downsample(stream(), first, last, max_points), count


def _missing(client: Client, run_id: str, key: str) -> None:
    from difflib import get_close_matches

    from loopml.errors import NotFoundError

    keys = [row[0] for row in client.metric_summaries(run_id, limit=1000)]
    close = get_close_matches(key, keys, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    shown = (", ".join(keys[:20]) + (" …" if len(keys) > 20 else "")) if keys else "none"
    raise NotFoundError(f"Run {run_id[:12]} has no metric {key!r}.{hint} Its metrics: {shown}.")
