"""``/evaluations``: the evaluation suites; ``/evaluations/<suite>``: the suite's leaderboard
with confidence intervals and one evaluation's report (metrics, slices, charts).

The leaderboard is ``Suite.leaderboard`` (what ``loopml leaderboard`` prints and the API's
``/api/suites/<name>/leaderboard`` returns); the report is ``evaluation/report.py``'s
``result_html``, the same fragment as the notebook display and ``loopml eval --report``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

from fastapi import Query, Request
from markupsafe import Markup
from starlette.responses import HTMLResponse

from loopml.errors import NotFoundError
from loopml.evaluation.errors import EvaluationError
from loopml.server.api.limits import MAX_INDEX, Name
from loopml.server.ui import page_router
from loopml.server.ui.render import render

if TYPE_CHECKING:
    from loopml.evaluation.compare import Leaderboard
    from loopml.tracking.client import Client

router = page_router()


@router.get("/evaluations")
def suites_page(request: Request) -> HTMLResponse:
    client: Client = request.app.state.loopml.client
    rows = []
    for latest in client.suites():
        versions = client.suite_versions(latest.name)
        rows.append(
            {
                "s": latest,
                "versions": len(versions),
                "evaluations": sum(len(client.evaluations(v)) for v in versions),
            }
        )
    return render(request, "evaluations/list.html", title="Evaluations", suites=rows)


def _bars(board: Leaderboard) -> Markup:
    """The leaderboard as interval bars (the chart of ``report.leaderboard_html``)."""
    from loopml.evaluation.charts import metric_bars_svg

    bars = [
        (
            f"{e.rank}. {e.model}",
            e.value,
            None if math.isnan(e.low) else e.low,
            None if math.isnan(e.high) else e.high,
        )
        for e in board.entries
    ]
    if not bars:
        return Markup("")
    return Markup(metric_bars_svg(bars, title=board.metric, metric=board.metric))


@router.get("/evaluations/{suite}")
def suite_page(
    request: Request,
    suite: Name,
    version: Annotated[int | None, Query(ge=1, le=2**31)] = None,
    metric: Annotated[str, Query(max_length=250)] = "",
    evaluation: Annotated[int | None, Query(ge=1, le=MAX_INDEX)] = None,
) -> HTMLResponse:
    """The leaderboard of the suite's newest version (or ``version``) ranked by ``metric``
    (default: the task's primary metric), and the report of ``evaluation`` (default: the
    leader's)."""
    from loopml.evaluation.report import result_html
    from loopml.evaluation.result import EvaluationResult
    from loopml.evaluation.suites import suite as get_suite

    client: Client = request.app.state.loopml.client
    judged_on = get_suite(suite if version is None else f"{suite}@{version}", client=client)
    stored = client.evaluations(judged_on.version)
    metrics = list(dict.fromkeys(k for e in stored for k in e.metrics))
    problem = None
    try:
        board = judged_on.leaderboard(metric=metric or None)
    except EvaluationError as exc:  # a metric this suite does not have
        problem = str(exc)
        board = judged_on.leaderboard()
    chosen = (
        evaluation
        if evaluation is not None
        else (board.entries[0].evaluation if board.entries else None)
    )
    report = None
    picked = None
    if chosen is not None:
        picked = client.evaluation(chosen)
        if picked.suite != judged_on.label:
            raise NotFoundError(
                f"Evaluation #{chosen} was made on {picked.suite}, not on {judged_on.label}: "
                f"open it at /evaluations/{picked.suite.rpartition('@')[0]}"
                f"?version={picked.suite.rpartition('@')[2]}&evaluation={chosen}."
            )
        report = Markup(result_html(EvaluationResult.stored(picked, judged_on, client)))
    return render(
        request,
        "evaluations/detail.html",
        title=f"Suite {judged_on.label}",
        s=judged_on.version,
        suite=judged_on,
        versions=client.suite_versions(judged_on.name),
        board=board,
        bars=_bars(board),
        metrics=metrics,
        metric=board.metric,
        evaluations=list(reversed(stored)),
        picked=picked,
        report=report,
        pinned=version,
        problem=problem,
        status_code=400 if problem else 200,
    )
