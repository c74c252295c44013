"""Runs: search with the filter language, one run's record, its steps."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from loopml.server.api.deps import Client
from loopml.server.pages import Page, Paging, page

router = APIRouter(tags=["runs"])


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


@router.get("/runs", summary="Search runs")
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
        Query(max_length=400, description="e.g. `metrics.rmse` or `started_at desc`."),
    ] = None,
) -> Page[RunOut]:
    records = client.search_runs(filter, sort, limit=paging.fetch, offset=paging.offset)
    return page([run_out(r) for r in records], paging)


@router.get("/runs/{run}", summary="One run")
def get_run(client: Client, run: str) -> RunDetail:
    """``run`` is an id, a unique id prefix (4+ characters) or ``pipeline#N`` (``%23``)."""
    return run_out(client.run_record(run), RunDetail)  # type: ignore[no-any-return]
