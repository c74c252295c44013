"""Evaluation suites, their leaderboards and stored evaluations.

The leaderboard is ``Suite.leaderboard`` (the ranking ``loopml leaderboard`` prints): each
model's newest evaluation, ranked by the metric, with its bootstrap interval, and grouped
with the models it cannot be told apart from (paired bootstrap against the group's first).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from loopml.server.api.deps import Client
from loopml.server.api.limits import MAX_INDEX, CappedRoute, Name, finite
from loopml.server.pages import Page, Paging, window

router = APIRouter(tags=["evaluations"], route_class=CappedRoute)


class Interval(BaseModel):
    """A metric's value and its bootstrap confidence interval (null when not defined)."""

    value: float | None
    low: float | None
    high: float | None


class EvaluationOut(BaseModel):
    id: int
    suite: str
    model: str
    model_digest: str
    run_id: str | None
    config_hash: str
    metrics: dict[str, Interval]
    created_at: float


def _interval(value: Any, low: Any, high: Any) -> Interval:
    return Interval(value=finite(value), low=finite(low), high=finite(high))


def evaluation_out(e: Any) -> EvaluationOut:
    return EvaluationOut(
        id=e.id,
        suite=e.suite,
        model=e.model_label,
        model_digest=e.model_digest,
        run_id=e.run_id,
        config_hash=e.config_hash,
        metrics={k: _interval(*v) for k, v in e.metrics.items()},
        created_at=e.created_at,
    )


class SuiteOut(BaseModel):
    name: str
    version: int
    ref: str
    data: str
    dataset_digest: str
    target: str
    task: str
    split: str
    options: dict[str, Any]
    indices_hash: str
    test_rows: int
    created_at: float


def suite_out(v: Any) -> SuiteOut:
    return SuiteOut(
        name=v.name,
        version=v.number,
        ref=v.label,
        data=v.dataset,
        dataset_digest=v.dataset_digest,
        target=v.target,
        task=v.task,
        split=v.split,
        options=v.options,
        indices_hash=v.indices_hash,
        test_rows=v.test_rows,
        created_at=v.created_at,
    )


@router.get("/suites", summary="Evaluation suites with their newest version")
def list_suites(client: Client, paging: Paging) -> Page[SuiteOut]:
    return window([suite_out(v) for v in client.suites()], paging)


class SuiteDetail(BaseModel):
    latest: SuiteOut
    versions: Page[SuiteOut]


@router.get("/suites/{name}", summary="A suite's newest definition and its versions")
def get_suite(client: Client, name: Name, paging: Paging) -> SuiteDetail:
    """Versions are oldest first."""
    latest = client.suite_version(name)
    versions = window([suite_out(v) for v in client.suite_versions(latest.name)], paging)
    return SuiteDetail(latest=suite_out(latest), versions=versions)


class EntryOut(BaseModel):
    rank: int
    group: int
    evaluation: int
    model: str
    value: float | None
    low: float | None
    high: float | None
    p_vs_leader: float | None
    run_id: str | None


class LeaderboardOut(BaseModel):
    suite: str
    metric: str
    higher_is_better: bool
    confidence: float
    entries: Page[EntryOut]


@router.get("/suites/{name}/leaderboard", summary="Rank the models evaluated on a suite")
def leaderboard(
    client: Client,
    name: Name,
    paging: Paging,
    version: Annotated[
        int | None, Query(ge=1, le=2**31, description="The suite version (default: newest).")
    ] = None,
    metric: Annotated[
        str | None,
        Query(max_length=250, description="Rank by this metric (default: the task's primary)."),
    ] = None,
    confidence: Annotated[
        float, Query(ge=0.5, le=0.999, description="The level of intervals and ties.")
    ] = 0.95,
) -> LeaderboardOut:
    """The ranking `loopml leaderboard` prints: each model's newest evaluation, best first;
    models in one ``group`` are not distinguishable at ``confidence``."""
    from loopml.evaluation.suites import suite

    ref = name if version is None else f"{name}@{version}"
    board = suite(ref, client=client).leaderboard(metric=metric, confidence=confidence)
    entries = [
        EntryOut(
            rank=e.rank,
            group=e.group,
            evaluation=e.evaluation,
            model=e.model,
            value=finite(e.value),
            low=finite(e.low),
            high=finite(e.high),
            p_vs_leader=finite(e.p_vs_leader),
            run_id=e.run_id,
        )
        for e in board.entries
    ]
    return LeaderboardOut(
        suite=board.suite,
        metric=board.metric,
        higher_is_better=board.higher_is_better,
        confidence=board.confidence,
        entries=window(entries, paging),
    )


class MetricFigure(Interval):
    higher_is_better: bool | None


class SliceOut(BaseModel):
    """One value of a slice column: its rows and every metric on them."""

    column: str
    value: str
    rows: int
    worse: bool
    metrics: dict[str, Interval]


class EvaluationDetail(EvaluationOut):
    primary: str
    confidence: float
    resamples: int
    test_rows: int
    figures: dict[str, MetricFigure]
    slices: Page[SliceOut]


@router.get("/evaluations/{id}", summary="One evaluation: every metric and the slice table")
def get_evaluation(
    client: Client,
    id: Annotated[int, Path(ge=1, le=MAX_INDEX, description="The evaluation's number.")],
    paging: Paging,
) -> EvaluationDetail:
    """Per-metric values with intervals, and per slice value (paginated) every metric; a
    slice marked ``worse`` is clearly worse than the whole test set on the primary metric."""
    from loopml.evaluation.result import EvaluationResult
    from loopml.evaluation.suites import suite

    stored = client.evaluation(id)
    result = EvaluationResult.stored(stored, suite(stored.suite, client=client), client)
    figures = result.to_dict()
    higher = figures.get("higher_is_better", {})

    def interval(d: dict[str, Any]) -> Interval:
        return _interval(d.get("value"), d.get("low"), d.get("high"))

    slices = [
        SliceOut(
            column=str(s["column"]),
            value=str(s["value"]),
            rows=int(s["rows"]),
            worse=bool(s["worse"]),
            metrics={k: interval(d) for k, d in s["metrics"].items()},
        )
        for s in figures.get("slices", [])
    ]
    return EvaluationDetail(
        **evaluation_out(stored).model_dump(),
        primary=str(figures["primary"]),
        confidence=result.confidence,
        resamples=result.resamples,
        test_rows=int(figures["test_rows"]),
        figures={
            k: MetricFigure(**interval(d).model_dump(), higher_is_better=higher.get(k))
            for k, d in figures["metrics"].items()
        },
        slices=window(slices, paging),
    )
