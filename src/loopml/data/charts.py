"""Self-contained SVG charts for the HTML views of profiles and drift reports.

Reports must open with no network (no CDN, no JavaScript library), so the few charts they
need — a histogram, two histograms overlaid, horizontal bars for categories — are written
as inline SVG here. Every text is XML-escaped: column names and category values are data.
Escaping, number formats and colours are shared with the evaluation charts (``loopml._svg``).
"""

from __future__ import annotations

from collections.abc import Sequence

from loopml._svg import PALETTE, escape, short, svg_open
from loopml._svg import fmt as _fmt

REFERENCE_COLOUR, CURRENT_COLOUR = PALETTE[0], PALETTE[1]


def histogram_svg(
    edges: Sequence[float],
    counts: Sequence[float],
    *,
    overlay: Sequence[float] | None = None,
    width: int = 240,
    height: int = 80,
    title: str = "",
) -> str:
    """Bars for ``counts`` over ``len(counts) + 1`` bin ``edges``; ``overlay`` drawn on top.

    With ``overlay`` (a second series on the same bins, e.g. the current data against the
    reference) both series are drawn as shares of their own totals, so tables of different
    sizes compare fairly.
    """
    if len(edges) != len(counts) + 1:
        raise ValueError(f"histogram_svg: {len(edges)} edges for {len(counts)} bins")
    series = [list(map(float, counts))]
    if overlay is not None:
        if len(overlay) != len(counts):
            raise ValueError(
                f"histogram_svg: overlay has {len(overlay)} bins, expected {len(counts)}"
            )
        series = [_shares(series[0]), _shares(list(map(float, overlay)))]
    top = max((max(s) for s in series if s), default=0.0) or 1.0
    n = max(len(counts), 1)
    bar = width / n
    parts = [svg_open(width, height + 14, title)]
    for k, values in enumerate(series):
        colour = CURRENT_COLOUR if k else REFERENCE_COLOUR
        opacity = "0.55" if overlay is not None else "0.9"
        for i, v in enumerate(values):
            h = height * v / top
            parts.append(
                f'<rect x="{i * bar:.2f}" y="{height - h:.2f}" width="{max(bar - 1, 0.5):.2f}" '
                f'height="{h:.2f}" fill="{colour}" fill-opacity="{opacity}">'
                f"<title>{escape(_fmt(edges[i]))} – {escape(_fmt(edges[i + 1]))}: {_fmt(v)}</title></rect>"
            )
    parts.append(
        f'<text x="0" y="{height + 12}" font-size="10" fill="#555">{escape(_fmt(edges[0]))}</text>'
        f'<text x="{width}" y="{height + 12}" font-size="10" fill="#555" text-anchor="end">'
        f"{escape(_fmt(edges[-1]))}</text></svg>"
    )
    return "".join(parts)


def bars_svg(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    overlay: Sequence[float] | None = None,
    width: int = 240,
    row: int = 14,
    title: str = "",
) -> str:
    """Horizontal bars, one row per label (top categories); ``overlay`` as a second bar."""
    series = [list(map(float, values))]
    if overlay is not None:
        series.append(list(map(float, overlay)))
    top = max((max(s) for s in series if s), default=0.0) or 1.0
    label_w = width * 0.4
    bar_w = width - label_w - 4
    per = row * len(series)
    height = per * len(labels)
    parts = [svg_open(width, height, title)]
    for i, label in enumerate(labels):
        y0 = i * per
        parts.append(
            f'<text x="0" y="{y0 + row - 3}" font-size="10" fill="#333">{escape(short(label))}</text>'
        )
        for k, values_k in enumerate(series):
            v = values_k[i] if i < len(values_k) else 0.0
            w = bar_w * v / top
            colour = CURRENT_COLOUR if k else REFERENCE_COLOUR
            parts.append(
                f'<rect x="{label_w:.2f}" y="{y0 + k * row + 2}" width="{w:.2f}" height="{row - 4}" '
                f'fill="{colour}"><title>{escape(label)}: {_fmt(v)}</title></rect>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _shares(values: list[float]) -> list[float]:
    total = sum(values)
    return [v / total for v in values] if total else values
