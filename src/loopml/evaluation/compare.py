"""Comparing models on one suite: the paired difference per metric, and the leaderboard.

Two models evaluated on the same suite version predicted the same test rows, so their
difference is judged by a paired bootstrap (``bootstrap.paired_bootstrap``): each resample
draws rows once and scores both models on them, which cancels the rows' own difficulty and
makes small real differences visible. The stored predictions are used: nothing is run again.

The leaderboard ranks the evaluated models by one metric and groups those that cannot be
told apart: walking down the ranking, a model joins the current group when its paired
difference from the group's leader is not significant at the chosen confidence, and starts
a new group otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.evaluation.errors import EvaluationError
from loopml.evaluation.result import fmt

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

    from loopml.evaluation.metrics import Metric
    from loopml.evaluation.result import EvaluationResult
    from loopml.evaluation.suites import Suite


@dataclass(frozen=True)
class MetricDifference:
    """``a - b`` for one metric with its interval and two-sided p-value, and the verdict."""

    metric: str
    a: float
    b: float
    diff: float
    low: float
    high: float
    p_value: float
    higher_is_better: bool
    verdict: str  # "a", "b" or "tie"


@dataclass(frozen=True)
class Comparison:
    """The paired comparison of model ``a`` and model ``b`` on one suite version."""

    suite: str
    a: str
    b: str
    confidence: float
    resamples: int
    differences: tuple[MetricDifference, ...]

    def __getitem__(self, metric: str) -> MetricDifference:
        for d in self.differences:
            if d.metric == metric:
                return d
        raise KeyError(f"No metric {metric!r}; compared: {', '.join(self.metrics)}.")

    @property
    def metrics(self) -> list[str]:
        return [d.metric for d in self.differences]

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([d.__dict__ for d in self.differences]).set_index("metric")

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "a": self.a,
            "b": self.b,
            "confidence": self.confidence,
            "resamples": self.resamples,
            "metrics": [{k: _enc(v) for k, v in d.__dict__.items()} for d in self.differences],
        }

    def verdict_text(self, d: MetricDifference) -> str:
        if d.verdict == "tie":
            return "no significant difference"
        return f"{self.a if d.verdict == 'a' else self.b} better"

    def __rich__(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=Text(f"{self.a} (A) vs {self.b} (B) on {self.suite}"),
            box=None,
            pad_edge=False,
            caption=Text(
                f"paired bootstrap, {self.resamples:,} resamples; difference = A − B; "
                f"{self.confidence:.0%} interval"
            ),
        )
        for column in ("metric", "A", "B", "A − B", "interval", "p", "verdict"):
            table.add_column(column, justify="left" if column in ("metric", "verdict") else "right")
        for d in self.differences:
            style = "" if d.verdict == "tie" else "bold"
            table.add_row(
                Text(d.metric),
                fmt(d.a),
                fmt(d.b),
                f"{d.diff:+.4g}" if math.isfinite(d.diff) else "–",
                f"{fmt(d.low)} – {fmt(d.high)}",
                _p(d.p_value),
                Text(self.verdict_text(d), style=style),
            )
        return table

    def _repr_html_(self) -> str:
        from loopml.evaluation.report import comparison_html

        return comparison_html(self)


@dataclass(frozen=True)
class Entry:
    """One model on the leaderboard."""

    rank: int
    group: int  # models in one group cannot be told apart
    evaluation: int
    model: str
    value: float
    low: float
    high: float
    p_vs_leader: float  # paired p-value against the leader it was compared with (NaN: first)
    run_id: str | None


@dataclass(frozen=True)
class Leaderboard:
    suite: str
    metric: str
    higher_is_better: bool
    confidence: float
    entries: tuple[Entry, ...]

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        columns = list(Entry.__dataclass_fields__)
        return pd.DataFrame([e.__dict__ for e in self.entries], columns=columns).set_index("rank")

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "confidence": self.confidence,
            "entries": [{k: _enc(v) for k, v in e.__dict__.items()} for e in self.entries],
        }

    def __rich__(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        better = "higher" if self.higher_is_better else "lower"
        table = Table(
            title=Text(f"{self.suite}: ranked by {self.metric} ({better} is better)"),
            box=None,
            pad_edge=False,
            caption=Text(
                "models in one group are not distinguishable at "
                f"{self.confidence:.0%} confidence (paired bootstrap against the group's first)"
            ),
        )
        for column in ("rank", "group", "eval", "model", self.metric, "interval", "p vs leader"):
            table.add_column(column, justify="left" if column in ("model",) else "right")
        for e in self.entries:
            table.add_row(
                str(e.rank),
                str(e.group),
                f"#{e.evaluation}",
                Text(e.model),
                fmt(e.value),
                "–" if math.isnan(e.low) else f"{fmt(e.low)} – {fmt(e.high)}",
                "" if math.isnan(e.p_vs_leader) else _p(e.p_vs_leader),
            )
        return table

    def _repr_html_(self) -> str:
        from loopml.evaluation.report import leaderboard_html

        return leaderboard_html(self)


def _enc(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _evaluated(suite: Suite, ref: Any) -> EvaluationResult:
    """``#N`` -> the stored evaluation N (of this suite version); anything else is evaluated
    (a stored result is reused)."""
    from loopml.evaluation.result import EvaluationResult

    if isinstance(ref, str) and ref.startswith("#") and ref[1:].isdigit():
        found = suite._client.evaluation(int(ref[1:]))
        if found.suite != suite.label:
            raise EvaluationError(
                f"Evaluation {ref} is on {found.suite}, not {suite.label}: compare models "
                "evaluated on the same suite version."
            )
        return EvaluationResult.stored(found, suite, suite._client)
    return suite.evaluate(ref)


def _metric_list(suite: Suite) -> list[Metric]:
    from loopml.evaluation.evaluate import _horizons, _metrics

    return _metrics(suite, _horizons(suite, suite.parts()))


def compare(
    suite: Suite,
    a: Any,
    b: Any,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Comparison:
    """See ``Suite.compare``."""
    from loopml.evaluation.bootstrap import paired_bootstrap

    if resamples < 1:
        raise EvaluationError("A comparison needs bootstrap resamples: use resamples >= 1.")
    first, second = _evaluated(suite, a), _evaluated(suite, b)
    y_a, pred_a = first.predictions()
    y_b, pred_b = second.predictions()
    _same_rows(y_a, y_b, first, second)
    metrics = _metric_list(suite)
    found = paired_bootstrap(
        metrics, y_a, pred_a, pred_b, resamples=resamples, seed=seed, confidence=confidence
    )
    alpha = 1 - confidence
    differences = []
    for m in metrics:
        d = found[m.name]
        verdict = "tie"
        if math.isfinite(d.p_value) and d.p_value < alpha and math.isfinite(d.diff):
            verdict = "a" if (d.diff > 0) == m.higher_is_better else "b"
        differences.append(
            MetricDifference(
                m.name, d.a, d.b, d.diff, d.low, d.high, d.p_value, m.higher_is_better, verdict
            )
        )
    return Comparison(
        suite.label, first.model, second.model, confidence, resamples, tuple(differences)
    )


def _same_rows(y_a: Any, y_b: Any, first: EvaluationResult, second: EvaluationResult) -> None:
    import numpy as np

    if len(y_a) != len(y_b) or not np.array_equal(y_a, y_b):
        raise EvaluationError(
            f"Evaluations #{first.id} and #{second.id} were not made on the same test rows; "
            "compare models evaluated on one suite version."
        )


def leaderboard(
    suite: Suite,
    *,
    metric: str | None = None,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> Leaderboard:
    """See ``Suite.leaderboard``."""
    from loopml.evaluation.bootstrap import paired_bootstrap
    from loopml.evaluation.result import EvaluationResult

    metrics = {m.name: m for m in _metric_list(suite)}
    name = metric or suite.primary_metric
    if name not in metrics:
        raise EvaluationError(
            f"Suite {suite.label} has no metric {name!r}; its metrics: {', '.join(metrics)}."
        )
    chosen = metrics[name]
    newest: dict[str, Any] = {}
    for e in suite._client.evaluations(suite.version):  # oldest first: the newest wins
        newest[e.model_digest] = e
    results = [EvaluationResult.stored(e, suite, suite._client) for e in newest.values()]

    def key(r: EvaluationResult) -> float:
        v = r.metrics[name].value if name in r.metrics else math.nan
        if math.isnan(v):
            return math.inf
        return -v if chosen.higher_is_better else v

    results.sort(key=lambda r: (key(r), r.id))
    entries: list[Entry] = []
    group, leader = 0, None
    for rank, r in enumerate(results, start=1):
        f = r.metrics.get(name)
        p = math.nan
        if leader is None:
            group, leader = 1, r
        else:
            y_l, pred_l = leader.predictions()
            y_r, pred_r = r.predictions()
            _same_rows(y_l, y_r, leader, r)
            d = paired_bootstrap(
                [chosen], y_l, pred_l, pred_r, resamples=resamples, seed=seed, confidence=confidence
            )[name]
            p = d.p_value
            if not (math.isfinite(p) and p >= 1 - confidence):
                group, leader = group + 1, r  # p stays: how clearly it trails the last leader
        entries.append(
            Entry(
                rank=rank,
                group=group,
                evaluation=r.id,
                model=r.model,
                value=f.value if f else math.nan,
                low=f.low if f else math.nan,
                high=f.high if f else math.nan,
                p_vs_leader=p,
                run_id=r.evaluation.run_id,
            )
        )
    return Leaderboard(suite.label, name, chosen.higher_is_better, confidence, tuple(entries))
