"""The HTML views of evaluations, comparisons and leaderboards.

Self-contained like the data reports: inline CSS and the SVG charts of ``charts.py``, no
script and no network, so a saved report opens anywhere and the same fragments serve the
notebook display (``_repr_html_``) and, later, the web UI. Model names, class labels and
slice values are data: every one is escaped.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from loopml._svg import escape
from loopml.evaluation.result import fmt

if TYPE_CHECKING:
    from loopml.evaluation.compare import Comparison, Leaderboard
    from loopml.evaluation.result import EvaluationResult

_CSS = """
.loopml-eval{font-family:system-ui,sans-serif;font-size:13px;color:#222}
.loopml-eval table{border-collapse:collapse;margin:6px 0 14px}
.loopml-eval th,.loopml-eval td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left}
.loopml-eval td.num{text-align:right;font-variant-numeric:tabular-nums}
.loopml-eval .worse{color:#b00020;font-weight:600}
.loopml-eval .better{color:#1b7f3b;font-weight:600}
.loopml-eval .note{color:#666}
.loopml-eval .charts{display:flex;flex-wrap:wrap;gap:16px}
""".strip()


def _wrap(body: str) -> str:
    return f'<div class="loopml-eval"><style>{_CSS}</style>{body}</div>'


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body>{_wrap(body)}</body></html>"
    )


def _interval(low: float, high: float) -> str:
    if math.isnan(low):
        return "–"
    return f"{fmt(low)} – {fmt(high)}"


def _metrics_table(result: EvaluationResult) -> str:
    level = f"{result.confidence:.0%} interval"
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td class='num'>{fmt(f.value)}</td>"
        f"<td class='num'>{_interval(f.low, f.high)}</td></tr>"
        for name, f in result.metrics.items()
    )
    return f"<table><tr><th>metric</th><th>value</th><th>{level}</th></tr>{rows}</table>"


def _slices_table(result: EvaluationResult) -> str:
    figures = result._figures
    primary = figures["primary"]
    slices = [s for s in figures["slices"] if primary in s["metrics"]]
    if not slices:
        return ""
    from loopml.evaluation.charts import metric_bars_svg

    rows, bars = [], []
    for s in slices:
        d = s["metrics"][primary]
        value = math.nan if d["value"] is None else float(d["value"])
        low = math.nan if d["low"] is None else float(d["low"])
        high = math.nan if d["high"] is None else float(d["high"])
        name = f"{s['column']}={s['value']}"
        flag = "<span class='worse'>clearly worse</span>" if s["worse"] else ""
        rows.append(
            f"<tr><td>{escape(name)}</td><td class='num'>{s['rows']:,}</td>"
            f"<td class='num'>{fmt(value)}</td><td class='num'>{_interval(low, high)}</td>"
            f"<td>{flag}</td></tr>"
        )
        bars.append(
            (name, value, None if math.isnan(low) else low, None if math.isnan(high) else high)
        )
    overall = result.metrics.get(primary)
    if overall is not None:
        bars.insert(
            0,
            (
                "overall",
                overall.value,
                None if math.isnan(overall.low) else overall.low,
                None if math.isnan(overall.high) else overall.high,
            ),
        )
    table = (
        f"<h3>{escape(primary)} by slice</h3><table><tr><th>slice</th><th>rows</th>"
        f"<th>{escape(primary)}</th><th>interval</th><th></th></tr>{''.join(rows)}</table>"
    )
    return table + metric_bars_svg(bars, title=f"{primary} by slice", metric=primary)


def _charts(result: EvaluationResult) -> str:
    """The task's charts, drawn from the stored predictions."""
    from loopml.evaluation import charts, curves

    y_true, pred = result.predictions()
    task = result.suite.task
    name = result.model
    parts: list[str] = []
    if task == "binary" and pred.scores is not None:
        fpr, tpr = curves.roc_curve(y_true, pred.scores)
        recall, precision = curves.pr_curve(y_true, pred.scores)
        auc = result.metrics.get("roc_auc")
        ap = result.metrics.get("pr_auc")
        parts.append(charts.roc_svg([(name, fpr, tpr, auc.value if auc else None)]))
        parts.append(
            charts.pr_svg(
                [(name, recall, precision, ap.value if ap else None)],
                base_rate=float(y_true.mean()) if len(y_true) else None,
            )
        )
        predicted, positive, count = curves.calibration(y_true, pred.scores)
        parts.append(charts.calibration_svg([(name, predicted, positive, count)]))
    if task in ("binary", "multiclass"):
        import numpy as np

        labels = [str(c) for c in result.suite.options.classes]
        if pred.labels is not None:
            predicted_codes = pred.labels
        elif pred.scores is not None and pred.scores.ndim == 2:
            predicted_codes = pred.scores.argmax(axis=1)
        elif pred.scores is not None:
            predicted_codes = (pred.scores >= result.suite.options.threshold).astype(np.int64)
        else:
            predicted_codes = None
        if predicted_codes is not None:
            matrix = curves.confusion(y_true, predicted_codes, len(labels))
            parts.append(charts.confusion_svg(matrix, labels))
    if task in ("regression", "forecasting") and pred.values is not None:
        parts.append(charts.predicted_vs_actual_svg(y_true, pred.values))
        parts.append(charts.residuals_svg(y_true, pred.values))
    if task == "forecasting" and pred.values is not None and pred.horizon is not None:
        parts.append(_forecast_chart(result, y_true, pred))
    return f"<div class='charts'>{''.join(parts)}</div>"


def _forecast_chart(result: EvaluationResult, y_true: Any, pred: Any) -> str:
    """Actual values over the test windows, and each fold's forecasts."""
    import numpy as np

    from loopml.evaluation import charts
    from loopml.evaluation.evaluate import load_predictions

    _, _, rows = load_predictions(
        result._client.load_artifact(result.evaluation.predictions_digest)
    )
    frame = result.suite.frame()
    column = result.suite.options.time
    t_all = (
        frame[column].to_numpy() if column and column in frame.columns else np.arange(len(frame))
    )
    order = np.argsort(rows, kind="stable")
    starts = np.flatnonzero(pred.horizon == 1)
    forecasts = {}
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(rows)
        forecasts[f"origin {k + 1}"] = (t_all[rows[start:end]], pred.values[start:end])
    return charts.forecast_svg(t_all[rows[order]], y_true[order], forecasts)


def _result_body(result: EvaluationResult) -> str:
    figures = result._figures
    head = (
        f"<h3>#{result.id} {escape(result.model)} on {escape(result.suite.label)}</h3>"
        f"<p class='note'>{figures['test_rows']:,} test rows of {escape(result.suite.dataset)}; "
        f"{result.resamples:,} bootstrap resamples"
        + ("; stored result" if result.reused else "")
        + "</p>"
    )
    return head + _metrics_table(result) + _slices_table(result) + _charts(result)


def result_html(result: EvaluationResult) -> str:
    """The notebook display: metrics, slices and charts."""
    return _wrap(_result_body(result))


def page_html(result: EvaluationResult) -> str:
    """The report ``loopml eval --report`` writes: the notebook display as a page."""
    return _page(f"{result.model} on {result.suite.label}", _result_body(result))


def comparison_html(comparison: Comparison) -> str:
    rows = []
    for d in comparison.differences:
        verdict = comparison.verdict_text(d)
        style = "" if d.verdict == "tie" else " class='better'"
        rows.append(
            f"<tr><td>{escape(d.metric)}</td><td class='num'>{fmt(d.a)}</td>"
            f"<td class='num'>{fmt(d.b)}</td><td class='num'>{fmt(d.diff)}</td>"
            f"<td class='num'>{_interval(d.low, d.high)}</td><td class='num'>"
            f"{fmt(d.p_value)}</td><td{style}>{escape(verdict)}</td></tr>"
        )
    head = (
        f"<h3>{escape(comparison.a)} (A) vs {escape(comparison.b)} (B) on "
        f"{escape(comparison.suite)}</h3><p class='note'>paired bootstrap, "
        f"{comparison.resamples:,} resamples; difference = A − B; "
        f"{comparison.confidence:.0%} interval</p>"
    )
    return _wrap(
        head + "<table><tr><th>metric</th><th>A</th><th>B</th><th>A − B</th><th>interval</th>"
        f"<th>p</th><th>verdict</th></tr>{''.join(rows)}</table>"
    )


def leaderboard_html(board: Leaderboard) -> str:
    from loopml.evaluation.charts import metric_bars_svg

    rows = "".join(
        f"<tr><td class='num'>{e.rank}</td><td class='num'>{e.group}</td>"
        f"<td>#{e.evaluation}</td><td>{escape(e.model)}</td><td class='num'>{fmt(e.value)}</td>"
        f"<td class='num'>{_interval(e.low, e.high)}</td></tr>"
        for e in board.entries
    )
    bars = [
        (
            f"{e.rank}. {e.model}",
            e.value,
            None if math.isnan(e.low) else e.low,
            None if math.isnan(e.high) else e.high,
        )
        for e in board.entries
    ]
    better = "higher" if board.higher_is_better else "lower"
    return _wrap(
        f"<h3>{escape(board.suite)}: ranked by {escape(board.metric)} ({better} is better)</h3>"
        "<table><tr><th>rank</th><th>group</th><th>eval</th><th>model</th>"
        f"<th>{escape(board.metric)}</th><th>interval</th></tr>{rows}</table>"
        + (metric_bars_svg(bars, title=board.metric, metric=board.metric) if bars else "")
    )
