"""Runs: search with the filter language, one run's record, its steps, artifacts and evaluations.

The metric routes of a run live in ``metrics.py``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from loopml.server.api.deps import Client
from loopml.server.api.evaluations import EvaluationOut, evaluation_out
from loopml.server.api.limits import CappedRoute, RunRef
from loopml.server.pages import Page, Paging, window

router = APIRouter(tags=["runs"], route_class=CappedRoute)
RUN_DOC = "A run id, a unique id prefix (4+ characters) or `pipeline#N` (send `#` as `%23`)."


class RunOut(BaseModel):
    id: str
    label: str
    pipeline: str
    number: int
    name: str
    kind: str
    status: str
    started_at: float
    ended_at: float | None
    duration_s: float | None
    host: str
    executor: str
    git_commit: str | None
    git_dirty: bool | None
    python_version: str | None
    cpu_s: float | None
    cost: float | None
    error: str | None
    params: dict[str, str]
    metrics: dict[str, float | None]
    tags: dict[str, str]


class RunDetail(RunOut):
    environment: dict[str, Any]
    git_diff_digest: str | None


def run_out(record: Any, cls: type[RunOut] = RunOut) -> Any:
    fields = {name: getattr(record, name) for name in cls.model_fields if name != "label"}
    return cls(label=record.label, **fields)


def run_item(r: Any) -> dict[str, Any]:
    """A :class:`RunOut` as a plain dict, built without pydantic (the list's hot path).

    orjson writes NaN and infinities as null, as pydantic does for ``RunOut``.
    """
    return {
        "id": r.id,
        "label": r.label,
        "pipeline": r.pipeline,
        "number": r.number,
        "name": r.name,
        "kind": r.kind,
        "status": str(r.status),
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "duration_s": r.duration_s,
        "host": r.host,
        "executor": r.executor,
        "git_commit": r.git_commit,
        "git_dirty": r.git_dirty,
        "python_version": r.python_version,
        "cpu_s": r.cpu_s,
        "cost": r.cost,
        "error": r.error,
        "params": r.params,
        "metrics": r.metrics,
        "tags": r.tags,
    }


@router.get("/runs", summary="Search runs", response_model=Page[RunOut])
def list_runs(
    client: Client,
    paging: Paging,
    filter: Annotated[
        str | None,
        Query(
            max_length=4000,
            description="The filter language of `loopml runs`, e.g. "
            "`metrics.rmse < 3 and params.alpha >= 0.1`.",
        ),
    ] = None,
    sort: Annotated[
        str | None,
        Query(max_length=400, description="e.g. `metrics.rmse` or `started desc`."),
    ] = None,
) -> Response:
    """The page is built as plain dicts and written by orjson: validating 100 pydantic
    models per request cost more than the query (the documented shape is ``Page[RunOut]``,
    and ``tests/server`` check that the answer matches it)."""
    records = client.search_runs(filter, sort, limit=paging.fetch, offset=paging.offset)
    more = len(records) > paging.limit
    body = {
        "items": [run_item(r) for r in records[: paging.limit]],
        "limit": paging.limit,
        "offset": paging.offset,
        "next_offset": paging.offset + paging.limit if more else None,
    }
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/runs/{run}", summary="One run")
def get_run(client: Client, run: RunRef) -> RunDetail:
    """``run`` is an id, a unique id prefix (4+ characters) or ``pipeline#N`` (``%23``)."""
    return run_out(client.run_record(run), RunDetail)  # type: ignore[no-any-return]


class StepOut(BaseModel):
    """One step of a run: what it did, whether it came from the cache, and why."""

    name: str
    position: int
    status: str
    cached: bool
    why: str
    reason: dict[str, Any] | None
    started_at: float | None
    ended_at: float | None
    wall_s: float | None
    cpu_s: float | None
    peak_mem_bytes: int | None
    cpus: float | None
    gpus: float | None
    error: str | None
    host: str | None  # where it ran: host, and node and worker process on a cluster
    attempts: int | None  # how many times it was started (@step(retries=N))


@router.get("/runs/{run}/steps", summary="The steps of a run, in pipeline order")
def run_steps(client: Client, run: RunRef, paging: Paging) -> Page[StepOut]:
    """Status, cache use (and why it ran or was reused), duration and resources per step."""
    from loopml.store.reasons import describe

    steps = client.steps(run)
    return window(
        [
            StepOut(
                name=s.name,
                position=s.position,
                status=str(s.status),
                cached=s.cached,
                why=describe(s.reason),
                reason=s.reason,
                started_at=s.started_at,
                ended_at=s.ended_at,
                wall_s=s.wall_s,
                cpu_s=s.cpu_s,
                peak_mem_bytes=s.peak_mem_bytes,
                cpus=s.cpus,
                gpus=s.gpus,
                error=s.error,
                host=s.host,
                attempts=s.attempts,
            )
            for s in steps
        ],
        paging,
    )


class Direction(StrEnum):
    input = "input"
    output = "output"
    logged = "logged"


class LinkOut(BaseModel):
    """A lineage link: a run (and step) read, produced or logged an artifact under a name."""

    run_id: str
    step: str | None
    direction: Direction
    name: str
    digest: str


def link_out(link: Any) -> LinkOut:
    return LinkOut(
        run_id=link.run_id,
        step=link.step,
        direction=Direction(link.direction),
        name=link.name,
        digest=link.digest,
    )


@router.get("/runs/{run}/artifacts", summary="The artifacts a run read, produced or logged")
def run_artifacts(
    client: Client,
    run: RunRef,
    paging: Paging,
    direction: Annotated[
        Direction | None, Query(description="Only inputs, outputs or logged artifacts.")
    ] = None,
) -> Page[LinkOut]:
    links = [link_out(lk) for lk in client.links(run=run)]
    return window([lk for lk in links if direction is None or lk.direction == direction], paging)


@router.get("/runs/{run}/evaluations", summary="The evaluations linked to a run")
def run_evaluations(client: Client, run: RunRef, paging: Paging) -> Page[EvaluationOut]:
    """Evaluations of the models the run made, or judged inside it."""
    return window([evaluation_out(e) for e in client.run_evaluations(run)], paging)
