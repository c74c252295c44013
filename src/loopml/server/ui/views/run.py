"""``/runs/<id>``: one run (what ``loopml runs show`` prints, with pictures), and
``/runs/compare?run=A&run=B``: runs side by side (what ``loopml runs compare`` prints, with
their metric series overlaid). ``/artifacts/<digest>/download`` streams an artifact to a
signed-in browser the way ``GET /api/artifacts/<digest>/content`` does for a token holder.

``/runs/compare`` is declared before ``/runs/{run}``; a run id is hex, so no run can be
named ``compare``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Query, Request
from markupsafe import Markup
from starlette.responses import HTMLResponse, StreamingResponse

from loopml.server.api.limits import Digest, RunRef
from loopml.server.ui import page_router
from loopml.server.ui.render import duration, render

if TYPE_CHECKING:
    from loopml.store.records import ArtifactLink, ArtifactRecord, MetricPoint, RunRecord
    from loopml.tracking.client import Client
    from loopml.tracking.preview import Preview

router = page_router()

MAX_METRICS = 500  # rows of the latest-values table
MAX_CHARTS = 24  # metric series drawn on the run page
MAX_COMPARE_CHARTS = 12  # shared metrics overlaid on the compare page
MAX_COMPARED = 10  # runs on the compare page
CHART_POINTS = 400  # each series is downsampled to this many points (min and max kept)
MAX_ARTIFACTS = 100  # distinct artifacts listed on the run page
MAX_PREVIEWS = 20  # of which previewed
MAX_ELSEWHERE = 12  # other runs named per artifact
MAX_LOG = 200_000  # characters of a step's stdout/stderr shown


# -- compare ------------------------------------------------------------------------------


@router.get("/runs/compare")
def compare_page(
    request: Request,
    run: Annotated[list[str], Query(max_length=300)] = [],  # noqa: B006 - FastAPI's list query
    all: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    from loopml.tracking.charts import svg_lines
    from loopml.tracking.compare import (
        MIN_RUNS,
        comparison_rows,
        differs,
        load_runs,
        shared_metrics,
    )

    client = request.app.state.loopml.client
    refs = [r.strip() for r in run if r.strip()]
    # Oldest first, whatever order the runs page listed them in: read left to right in time.
    records = sorted(load_runs(client, refs[:MAX_COMPARED]), key=lambda r: r.started_at)
    if len(records) < MIN_RUNS:
        return render(
            request,
            "run/compare.html",
            title="Compare runs",
            runs=records,
            problem=(
                f"Pick at least {MIN_RUNS} runs to compare: tick their boxes on the runs page "
                "and press “Compare selected runs”, or list them in the address, e.g. "
                "/runs/compare?run=train%231&run=train%232."
            ),
            rows=[],
            charts=[],
            show_all=all,
            hidden=0,
            dropped=0,
            status_code=400,
        )
    rows = [
        (name, values, differs(values))
        for name, values in comparison_rows(records, duration=duration, client=client)
    ]
    shown = [row for row in rows if all or row[2]]
    charts: list[Markup] = []
    for key in shared_metrics(records)[:MAX_COMPARE_CHARTS]:
        series = []
        for r in records:
            if key in r.metrics:
                points = metric_series(client, r.id, key, CHART_POINTS)
                series.append((r.label, [p.step for p in points], [p.value for p in points]))
        charts.append(Markup(svg_lines(key, series, width=390)))
    return render(
        request,
        "run/compare.html",
        title="Compare " + ", ".join(r.label for r in records),
        runs=records,
        problem=None,
        rows=shown,
        charts=charts,
        show_all=all,
        hidden=len(rows) - len(shown),
        dropped=max(0, len(refs) - MAX_COMPARED),
    )


def metric_series(client: Client, run_id: str, key: str, max_points: int) -> list[MetricPoint]:
    """One series of a run, at most ``max_points`` points, downsampled as the API does."""
    from loopml.server.api.metrics import bounded_series

    return bounded_series(client, run_id, key, max_points)[0]


# -- artifacts ----------------------------------------------------------------------------


@router.get("/artifacts/{digest}/download")
def download_artifact(request: Request, digest: Digest) -> StreamingResponse:
    """The artifact's bytes for the browser (the API route's stream: verified first,
    ``nosniff``, a safe ``attachment`` file name)."""
    from loopml.server.api.artifacts import download

    return download(request.app.state.loopml.client, digest)


@dataclass
class Artifact:
    """One artifact the run touched, with every link of this run to it."""

    record: ArtifactRecord
    links: list[ArtifactLink] = field(default_factory=list)
    preview: Preview | None = None
    elsewhere: list[tuple[RunRecord, list[str]]] = field(default_factory=list)
    elsewhere_more: int = 0


def _artifacts(client: Client, run_id: str, links: list[ArtifactLink]) -> tuple[list[Any], int]:
    from loopml.errors import NotFoundError
    from loopml.tracking.preview import preview

    by_digest: dict[str, list[ArtifactLink]] = {}
    for link in links:
        by_digest.setdefault(link.digest, []).append(link)
    chosen = list(by_digest.items())[:MAX_ARTIFACTS]
    out: list[Artifact] = []
    others: dict[str, dict[str, list[str]]] = {}
    for digest, mine in chosen:
        try:
            record = client.artifact(digest)
        except NotFoundError:
            continue
        item = Artifact(record=record, links=mine)
        if len(out) < MAX_PREVIEWS:
            item.preview = preview(client, record)
        runs: dict[str, list[str]] = {}
        for link in client.links(digest=digest):
            if link.run_id != run_id:
                runs.setdefault(link.run_id, [])
                if link.direction not in runs[link.run_id]:
                    runs[link.run_id].append(link.direction)
        others[digest] = runs
        out.append(item)
    ids = list(dict.fromkeys(i for runs in others.values() for i in runs))
    records = client.runs_by_id(ids) if ids else {}
    for item in out:
        runs = others[item.record.digest]
        known = [(records[i], directions) for i, directions in runs.items() if i in records]
        known.sort(key=lambda pair: pair[0].started_at)
        item.elsewhere = known[:MAX_ELSEWHERE]
        item.elsewhere_more = max(0, len(known) - MAX_ELSEWHERE)
    return out, max(0, len(by_digest) - MAX_ARTIFACTS)


# -- the run ------------------------------------------------------------------------------


@router.get("/runs/{run}")
def run_page(
    request: Request,
    run: RunRef,
) -> HTMLResponse:
    from loopml.tracking.charts import dag_svg, step_edges, svg_lines

    client = request.app.state.loopml.client
    record = client.run_record(run)
    steps = client.steps(record.id)
    links = client.links(run=record.id)
    dag = dag_svg(
        [s.name for s in steps],
        step_edges(steps, links),
        status={s.name: str(s.status) for s in steps},
        cached={s.name for s in steps if s.cached},
        durations={s.name: s.wall_s for s in steps},
        links={s.name: f"#step-{s.name}" for s in steps},
    )
    summaries = client.metric_summaries(record.id, limit=MAX_METRICS + 1)
    charts: list[Markup] = []
    for key, _, _, count in summaries[:MAX_METRICS]:
        if count >= 2 and len(charts) < MAX_CHARTS:
            points = metric_series(client, record.id, key, CHART_POINTS)
            series = [(record.label, [p.step for p in points], [p.value for p in points])]
            charts.append(Markup(svg_lines(key, series, width=390, height=220)))
    artifacts, artifacts_more = _artifacts(client, record.id, links)
    step_names = {s.id: s.name for s in steps}
    datasets: dict[str, tuple[Any, list[str]]] = {}
    for version, step_id in client.datasets_read(record.id):
        entry = datasets.setdefault(version.label, (version, []))
        name = step_names.get(step_id or "", "the run")
        if name not in entry[1]:
            entry[1].append(name)
    env = dict(record.environment)
    packages = env.pop("packages", {}) or {}
    return render(
        request,
        "run/show.html",
        title=f"Run {record.label}",
        run=record,
        steps=steps,
        dag=Markup(dag),
        metrics=summaries[:MAX_METRICS],
        metrics_more=len(summaries) > MAX_METRICS,
        charts=charts,
        artifacts=artifacts,
        artifacts_more=artifacts_more,
        first_table=next(
            (a.record.digest for a in artifacts if a.preview and a.preview.kind == "table"), None
        ),
        datasets=list(datasets.values()),
        evaluations=client.run_evaluations(record.id),
        models=client.run_models(record.id),
        environment=sorted(env.items()),
        packages=sorted(packages.items()),
        log_limit=MAX_LOG,
    )
