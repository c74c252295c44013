"""How a profile looks: an HTML table (notebooks), a whole HTML page, a Rich table.

The HTML is also well-formed XML (self-closed void elements, numeric entities only), so
a test can parse it strictly, and every column name and value is escaped: they are data.
The page has inline CSS and SVG only — no script, no CDN — so it opens offline.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from loopml.data.charts import bars_svg, histogram_svg
from loopml.data.profile_column import ColumnProfile, Scalar

if TYPE_CHECKING:
    from rich.table import Table

    from loopml.data.profile import Profile

SPARKS = "▁▂▃▄▅▆▇█"

_PAGE_CSS = "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222}"
# Scoped to the table's class and shipped with it, so the notebook display is styled too.
_CSS = """
table.loopml-profile{border-collapse:collapse;font-size:13px}
.loopml-profile th,.loopml-profile td{border-bottom:1px solid #ddd;padding:6px 10px;
text-align:left;vertical-align:top}
.loopml-profile th{background:#f5f5f5}
.loopml-profile .name{font-weight:600;word-break:break-all;max-width:16em}
.loopml-profile .dim{color:#777;font-size:12px}
.loopml-profile dl{display:grid;grid-template-columns:auto auto;gap:0 10px;margin:0}
.loopml-profile dt{color:#777}.loopml-profile dd{margin:0;font-variant-numeric:tabular-nums}
"""


def fmt(value: Scalar | None) -> str:
    """A figure as short text: thousands separators for ints, 4 significant digits else."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def figures(column: ColumnProfile) -> list[tuple[str, str]]:
    """The statistics worth showing for the column's kind, as (label, text) pairs."""
    out: list[tuple[str, str]] = []
    if column.kind == "numeric":
        out += [("min", fmt(column.min)), ("max", fmt(column.max))]
        out += [("mean", fmt(column.mean)), ("std", fmt(column.std))]
        for q, label in (
            (0.05, "p5"),
            (0.25, "p25"),
            (0.5, "median"),
            (0.75, "p75"),
            (0.95, "p95"),
        ):
            out.append((label, fmt(column.quantiles.get(q))))
        out += [("zeros", fmt(column.zeros)), ("negatives", fmt(column.negatives))]
        if column.infinite:
            out.append(("infinite", fmt(column.infinite)))
    elif column.kind == "datetime":
        out += [("min", fmt(column.min)), ("max", fmt(column.max))]
    elif column.min_length is not None:
        out.append(("length", f"{column.min_length:,}–{column.max_length:,}"))
    if column.other:
        out.append(("other values", fmt(column.other)))
    return out


def chart(column: ColumnProfile) -> str:
    """The column's SVG chart: a histogram for numbers, bars for top values, or nothing."""
    if column.histogram is not None:
        h = column.histogram
        return histogram_svg(h.edges, h.counts, title=column.name)
    if column.top:
        labels = [value if value else "(empty)" for value, _ in column.top]
        return bars_svg(labels, [n for _, n in column.top], title=column.name)
    return ""


def html_table(profile: Profile) -> str:
    """The profile as one styled HTML table, one row per column (the notebook display)."""
    rows = []
    for c in profile.columns:
        stats = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in figures(c))
        missing = f"{fmt(c.missing)} ({c.missing_share:.1%})"
        rows.append(
            "<tr>"
            f'<td><div class="name">{escape(c.name)}</div>'
            f'<div class="dim">{escape(c.kind)} · {escape(c.dtype)}</div></td>'
            f"<td><dl><dt>values</dt><dd>{fmt(c.count)}</dd>"
            f"<dt>missing</dt><dd>{escape(missing)}</dd>"
            f"<dt>distinct</dt><dd>{fmt(c.distinct)}</dd></dl></td>"
            f"<td><dl>{stats}</dl></td>"
            f"<td>{chart(c)}</td>"
            "</tr>"
        )
    caption = f"{profile.rows:,} rows × {len(profile.columns)} columns"
    return (
        f'<div class="loopml-profile-view"><style>{_CSS}</style>'
        f'<table class="loopml-profile"><caption>{escape(caption)}</caption>'
        "<thead><tr><th>column</th><th>values</th><th>statistics</th><th>distribution</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def html_page(profile: Profile, *, title: str) -> str:
    """A whole self-contained HTML page around ``html_table``."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{escape(title)}</title><style>{_PAGE_CSS}</style></head>"
        f"<body><h1>{escape(title)}</h1>{html_table(profile)}</body></html>\n"
    )


def sparkline(counts: tuple[int, ...]) -> str:
    """Counts as block characters, tallest bin full; a non-empty bin never draws blank."""
    top = max(counts, default=0)
    if not top:
        return ""
    steps = len(SPARKS) - 1
    return "".join(SPARKS[round(n / top * steps)] if n else " " for n in counts)


def distribution(column: ColumnProfile, *, shown: int = 3) -> str:
    """One line for the terminal: a sparkline, or the top values with their shares."""
    if column.histogram is not None:
        return sparkline(column.histogram.counts)
    if column.top and column.count:
        parts = [f"{v or '(empty)'} {n / column.count:.0%}" for v, n in column.top[:shown]]
        return " · ".join(parts)
    return ""


def rich_table(profile: Profile) -> Table:
    """The profile as a Rich table for the terminal; cell text is never read as markup."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{profile.rows:,} rows × {len(profile.columns)} columns")
    for header in ("column", "kind", "missing", "distinct", "min", "mean", "max"):
        justify = "left" if header in ("column", "kind") else "right"
        table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
    table.add_column("distribution", no_wrap=True)
    for c in profile.columns:
        missing = f"{fmt(c.missing)} ({c.missing_share:.0%})" if c.missing else "0"
        low, high = (c.min, c.max) if c.kind in ("numeric", "datetime") else (None, None)
        if c.min_length is not None:
            low, high = f"len {c.min_length}", f"len {c.max_length}"
        table.add_row(
            *(Text(text) for text in (c.name, c.kind, missing, fmt(c.distinct))),
            Text(fmt(low)),
            Text(fmt(c.mean)),
            Text(fmt(high)),
            Text(distribution(c)),
        )
    return table
