"""The HTML and terminal views of a ``DriftReport``.

HTML is self-contained: inline CSS and SVG charts from ``charts.py``, no script and no
network, so a saved report opens anywhere. Every column name, category and note is data
and is escaped. The terminal view is a Rich table in the same worst-first order, the one
``loopml data diff`` prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.data.charts import CURRENT_COLOUR, REFERENCE_COLOUR, bars_svg, histogram_svg
from loopml.data.drift_report import ColumnDrift, DriftReport, escape_text, fmt

if TYPE_CHECKING:
    from rich.table import Table

_CSS = """
.loopml-drift{font-family:system-ui,sans-serif;font-size:13px;color:#222}
.loopml-drift table{border-collapse:collapse}
.loopml-drift th,.loopml-drift td{padding:4px 8px;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}
.loopml-drift td.num{text-align:right;font-variant-numeric:tabular-nums}
.loopml-drift .drifted{color:#b00020;font-weight:600}
.loopml-drift .ok{color:#1b7f3b}
.loopml-drift .note{color:#666}
""".strip()


def _verdict(c: ColumnDrift) -> str:
    return "drifted" if c.drifted else "ok"


def _decision(c: ColumnDrift) -> str:
    """``wasserstein_normed 0.41 > 0.1`` — the method, its score and the threshold."""
    if c.method in ("schema", "missing", ""):
        return c.method or "—"
    op = (
        ("<" if c.drifted else "≥") if c.method.endswith("_pvalue") else (">" if c.drifted else "≤")
    )
    return f"{c.method} {fmt(c.score)} {op} {fmt(c.threshold)}"


def _categories(c: ColumnDrift) -> str:
    parts = []
    if c.new_categories_total:
        shown = ", ".join(f"{v} ({n})" for v, n in c.new_categories)
        more = c.new_categories_total - len(c.new_categories)
        parts.append(f"new: {shown}" + (f" … +{more}" if more else ""))
    if c.vanished_categories_total:
        shown = ", ".join(f"{v} ({n})" for v, n in c.vanished_categories)
        more = c.vanished_categories_total - len(c.vanished_categories)
        parts.append(f"vanished: {shown}" + (f" … +{more}" if more else ""))
    return "; ".join(parts)


def _chart(c: ColumnDrift) -> str:
    h = c.histogram
    if h is None or not h.reference:
        return ""
    if h.labels:
        return bars_svg(list(h.labels), _shares(h.reference), overlay=_shares(h.current))
    return histogram_svg(list(h.edges), list(h.reference), overlay=list(h.current))


def _shares(counts: tuple[int, ...]) -> list[float]:
    total = sum(counts)
    return [v / total for v in counts] if total else [0.0 for _ in counts]


def _stats_cell(c: ColumnDrift) -> str:
    return "<br>".join(f"{escape_text(k)} {fmt(v)}" for k, v in c.statistics.items())


def report_html(report: DriftReport) -> str:
    """The report as an HTML fragment: summary, schema changes, one row per column."""
    e = escape_text
    n_drift = len(report.drifted)
    out = [
        f'<div class="loopml-drift"><style>{_CSS}</style>',
        f"<p><b>Drift</b>: {n_drift} of {len(report.columns)} columns drifted; "
        f"reference {report.rows_reference:,} rows, current {report.rows_current:,} rows. "
        f'<span style="color:{REFERENCE_COLOUR}">■</span> reference '
        f'<span style="color:{CURRENT_COLOUR}">■</span> current</p>',
    ]
    if report.schema:
        out.append("<p><b>Schema changes</b></p><ul>")
        out += [f"<li><code>{e(line)}</code></li>" for line in report.schema.lines()]
        out.append("</ul>")
    out.append(
        "<table><thead><tr><th>column</th><th>kind</th><th>drift</th><th>decided by</th>"
        "<th>statistics</th><th>missing (ref → cur)</th><th>categories</th>"
        "<th>distribution</th></tr></thead><tbody>"
    )
    for c in report.columns:
        note = f'<br><span class="note">{e(c.note)}</span>' if c.note else ""
        out.append(
            f"<tr><td><b>{e(c.column)}</b>{note}</td><td>{e(c.kind)}</td>"
            f'<td class="{_verdict(c)}">{_verdict(c)}</td><td>{e(_decision(c))}</td>'
            f'<td class="num">{_stats_cell(c)}</td>'
            f'<td class="num">{c.missing_rate_reference:.1%} → {c.missing_rate_current:.1%}</td>'
            f"<td>{e(_categories(c))}</td><td>{_chart(c)}</td></tr>"
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def page_html(report: DriftReport) -> str:
    """A whole HTML page around ``report_html``."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Drift report: {len(report.drifted)} of {len(report.columns)} columns drifted"
        f"</title></head><body>{report_html(report)}</body></html>\n"
    )


def rich_table(report: DriftReport) -> Table:
    """Schema changes as the caption, then one row per column, worst first."""
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"Drift: {len(report.drifted)} of {len(report.columns)} columns drifted "
        f"({report.rows_reference:,} → {report.rows_current:,} rows)",
        caption="\n".join(report.schema.lines()) or None,
        caption_justify="left",
    )
    table.add_column("column", overflow="fold")
    table.add_column("kind")
    table.add_column("drift")
    table.add_column("method")
    table.add_column("score", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("psi", justify="right")
    table.add_column("missing", justify="right")
    table.add_column("categories / note", overflow="fold")
    for c in report.columns:
        table.add_row(
            Text(c.column),
            c.kind,
            Text("drifted", style="bold red") if c.drifted else Text("ok", style="green"),
            c.method,
            fmt(c.score),
            fmt(c.threshold),
            fmt(c.statistics.get("psi", float("nan"))),
            f"{c.missing_rate_reference:.1%} → {c.missing_rate_current:.1%}",
            Text("; ".join(p for p in (_categories(c), c.note) if p)),
        )
    return table
