"""``/runs``: every run, filtered with the filter language of ``loopml runs``, sortable by any
column, a page at a time (fast with 100,000 runs: only one page is read)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import Query, Request
from starlette.responses import HTMLResponse

from loopml.errors import InvalidParameterError
from loopml.server.ui import page_router
from loopml.server.ui.render import render

router = page_router()

PAGE = 50
MAX_PAGE = 500
MAX_PARAM_COLUMNS = 6
MAX_METRIC_COLUMNS = 6


def _columns(counts: Counter[str], chosen: list[str], prefix: str, cap: int) -> list[str]:
    if chosen:
        return [c[len(prefix) :] for c in chosen if c.startswith(prefix)]
    # The keys most runs of the page have; plain metrics before namespaced ones ("suite.auc"),
    # and interval bounds ("rmse.low", "rmse.high") last.
    ranked = sorted(counts, key=lambda k: (k.endswith((".low", ".high")), -counts[k], "." in k, k))
    return ranked[:cap]


@router.get("/runs")
def runs_page(
    request: Request,
    filter: Annotated[str, Query(max_length=4000)] = "",
    sort: Annotated[str, Query(max_length=400)] = "",
    columns: Annotated[str, Query(max_length=4000)] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> HTMLResponse:
    client = request.app.state.loopml.client
    problem = None
    try:
        records = client.search_runs(filter or None, sort or None, limit=limit + 1, offset=offset)
    except InvalidParameterError as exc:
        problem, records = str(exc), []
    more = len(records) > limit
    records = records[:limit]
    chosen = [c.strip() for c in columns.split(",") if c.strip()]
    params = _columns(
        Counter(k for r in records for k in r.params), chosen, "params.", MAX_PARAM_COLUMNS
    )
    metrics = _columns(
        Counter(k for r in records for k in r.metrics), chosen, "metrics.", MAX_METRIC_COLUMNS
    )
    hidden = sorted(
        {f"params.{k}" for r in records for k in r.params} - {f"params.{k}" for k in params}
    ) + sorted(
        {f"metrics.{k}" for r in records for k in r.metrics} - {f"metrics.{k}" for k in metrics}
    )
    return render(
        request,
        "runs/list.html",
        title="Runs",
        runs=records,
        params=params,
        metrics=metrics,
        hidden=hidden,
        filter=filter,
        sort=sort,
        columns=columns,
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
        problem=problem,
        status_code=400 if problem else 200,
    )
