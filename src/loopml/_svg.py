"""What every hand-written SVG chart shares: escaping, number formats, colours, a frame with axes.

Reports must open offline, with no plotting or JavaScript library, so loopml writes its charts
as inline SVG: ``data/charts.py`` for profiles and drift, ``evaluation/charts.py`` for
evaluation reports. The parts that are easy to get subtly wrong live here once:

- every text is user data (column names, class labels, model names), so it is XML-escaped, and
  characters XML cannot hold at all (control characters, lone surrogates such as the
  ``'\\udcff'`` that ``surrogateescape`` makes of a non-UTF-8 byte) become U+FFFD instead of
  producing a document no parser accepts;
- coordinates are written with one decimal and tick labels with as many fixed decimals as the
  tick step needs, so the output is stable and never shows ``1e-05`` or ``nan``;
- ``Frame`` maps data to pixels and draws the axes, ticks and labels the same way for every
  chart; points outside its ranges are clamped to its edges (a chart can never draw outside
  its own box).

Pure Python on purpose: the data charts are drawn where numpy may not be loaded yet.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape as _html_escape

# Vega's "tableau10": the first two are the reference/current colours of the data reports.
PALETTE = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#eeca3b",
    "#9d755d",
    "#ff9da6",
    "#bab0ac",
)
INK = "#333"
MUTED = "#888"
GRID = "#e5e5e5"

# Characters an XML 1.0 document cannot contain, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: object) -> str:
    """``text`` safe inside an SVG/HTML element or a quoted attribute.

    Markup characters are escaped; characters XML cannot hold (control characters, lone
    surrogates from undecodable bytes) are replaced by U+FFFD, so a hostile label can neither
    inject markup nor make the document unparsable.
    """
    return _html_escape(_NOT_XML.sub("\ufffd", str(text)), quote=True)


def fmt(value: float) -> str:
    """Four significant digits: counts and bin edges in tooltips."""
    return f"{value:.4g}"


def short(label: str, limit: int = 24) -> str:
    """``label`` cut to ``limit`` characters with an ellipsis (the full text goes in a tooltip)."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def svg_open(width: float, height: float, title: str = "", *, attrs: str = "") -> str:
    """The opening ``<svg>`` tag (``role="img"``) and its accessible ``<title>``."""
    extra = f" {attrs}" if attrs else ""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"{extra}>'
    )
    return head + (f"<title>{escape(title)}</title>" if title else "")


def no_data_svg(title: str, *, width: int = 360, height: int = 120) -> str:
    """A small chart that says there is nothing to draw (empty input is not an error)."""
    return (
        svg_open(width, height, f"{title}: no data" if title else "no data", attrs=_FONT)
        + _title_text(title, width)
        + f'<text x="{width / 2:.1f}" y="{height / 2 + 4:.1f}" text-anchor="middle" '
        f'fill="{MUTED}">no data</text></svg>'
    )


_FONT = 'font-family="sans-serif" font-size="11"'


def chart_open(width: float, height: float, title: str) -> str:
    """``svg_open`` with the evaluation charts' font, and the title written on top."""
    return svg_open(width, height, title, attrs=_FONT) + _title_text(title, width)


def _title_text(title: str, width: float) -> str:
    if not title:
        return ""
    return (
        f'<text x="{width / 2:.1f}" y="15" text-anchor="middle" font-size="13" '
        f'font-weight="bold" fill="{INK}">{escape(short(title, 60))}</text>'
    )


def nice_range(low: float, high: float) -> tuple[float, float]:
    """``(low, high)`` widened to round ticks; a single value gets a range around it."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return 0.0, 1.0
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = tick_step(low, high)
    return math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step


def tick_step(low: float, high: float, count: int = 5) -> float:
    """A round step (1, 2 or 5 × 10^k) giving about ``count`` ticks over ``[low, high]``."""
    raw = (high - low) / max(count, 1) or 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if raw <= m * power * 1.0000001:
            return m * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values inside ``[low, high]``, about ``count`` of them."""
    step = tick_step(low, high, count)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [k * step for k in range(first, last + 1)][: 4 * count]


def tick_label(value: float, step: float) -> str:
    """``value`` with the fixed decimals that ``step`` needs (0.25 -> 2, 20 -> 0)."""
    if abs(value) >= 1e7 or (value and abs(value) < 1e-6):
        return f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    text = f"{value:.{min(decimals, 6)}f}"
    return "0" if text.strip("-0.") == "" else text


@dataclass(frozen=True, slots=True)
class Frame:
    """The plotting box of a chart: data ranges mapped onto a pixel rectangle (y upwards)."""

    left: float
    top: float
    width: float
    height: float
    x0: float
    x1: float
    y0: float
    y1: float

    def x(self, value: float) -> float:
        """The pixel column of ``value``, clamped to the box."""
        share = (value - self.x0) / ((self.x1 - self.x0) or 1.0)
        return self.left + self.width * min(max(share, 0.0), 1.0)

    def y(self, value: float) -> float:
        """The pixel row of ``value``, clamped to the box."""
        share = (value - self.y0) / ((self.y1 - self.y0) or 1.0)
        return self.top + self.height * (1.0 - min(max(share, 0.0), 1.0))

    def points(self, xs: Sequence[float], ys: Sequence[float]) -> str:
        """``x,y x,y …`` in pixels for a polyline; non-finite pairs are skipped."""
        return " ".join(
            f"{self.x(a):.1f},{self.y(b):.1f}"
            for a, b in zip(xs, ys, strict=True)
            if math.isfinite(a) and math.isfinite(b)
        )

    def axes(
        self,
        xlabel: str,
        ylabel: str,
        *,
        xformat: Callable[[float, float], str] = tick_label,
        xticks: tuple[Sequence[float], float] | None = None,
        grid: bool = True,
        yticks: bool = True,
    ) -> str:
        """Grid lines, the two axes, a few labelled ticks on each, and the axis titles.

        ``xticks`` (positions, step) replaces the evenly spaced x ticks, e.g. with whole hours
        or days of a time axis; ``xformat(value, step)`` writes each."""
        right, bottom = self.left + self.width, self.top + self.height
        parts = []
        xat, xstep = xticks or (ticks(self.x0, self.x1), tick_step(self.x0, self.x1))
        for v in xat:
            px = self.x(v)
            if grid:
                parts.append(
                    f'<line x1="{px:.1f}" y1="{self.top:.1f}" x2="{px:.1f}" y2="{bottom:.1f}" '
                    f'stroke="{GRID}"/>'
                )
            parts.append(
                f'<text x="{px:.1f}" y="{bottom + 13:.1f}" text-anchor="middle" fill="{INK}">'
                f"{escape(xformat(v, xstep))}</text>"
            )
        if yticks:
            ystep = tick_step(self.y0, self.y1)
            for v in ticks(self.y0, self.y1):
                py = self.y(v)
                if grid:
                    parts.append(
                        f'<line x1="{self.left:.1f}" y1="{py:.1f}" x2="{right:.1f}" '
                        f'y2="{py:.1f}" stroke="{GRID}"/>'
                    )
                parts.append(
                    f'<text x="{self.left - 4:.1f}" y="{py + 4:.1f}" text-anchor="end" '
                    f'fill="{INK}">{escape(tick_label(v, ystep))}</text>'
                )
        parts.append(
            f'<polyline points="{self.left:.1f},{self.top:.1f} {self.left:.1f},{bottom:.1f} '
            f'{right:.1f},{bottom:.1f}" fill="none" stroke="{INK}"/>'
        )
        parts.append(
            f'<text x="{self.left + self.width / 2:.1f}" y="{bottom + 28:.1f}" '
            f'text-anchor="middle" fill="{INK}">{escape(xlabel)}</text>'
        )
        if ylabel:
            cy = self.top + self.height / 2
            parts.append(
                f'<text x="12" y="{cy:.1f}" text-anchor="middle" fill="{INK}" '
                f'transform="rotate(-90 12 {cy:.1f})">{escape(ylabel)}</text>'
            )
        return "".join(parts)

    def line(self, x0: float, y0: float, x1: float, y1: float, *, colour: str = MUTED) -> str:
        """A dashed reference line between two data points (a diagonal, a base rate)."""
        return (
            f'<line x1="{self.x(x0):.1f}" y1="{self.y(y0):.1f}" x2="{self.x(x1):.1f}" '
            f'y2="{self.y(y1):.1f}" stroke="{colour}" stroke-dasharray="4 3"/>'
        )


def legend(entries: Sequence[tuple[str, str]], *, x: float, y: float, row: int = 14) -> str:
    """One row per ``(text, colour)`` from ``(x, y)`` down: a swatch and the escaped text."""
    parts = []
    for i, (text, colour) in enumerate(entries):
        top = y + i * row
        parts.append(
            f'<g><title>{escape(text)}</title><rect x="{x:.1f}" y="{top + 2:.1f}" width="10" '
            f'height="10" fill="{colour}"/><text x="{x + 14:.1f}" y="{top + 11:.1f}" '
            f'fill="{INK}">{escape(short(text, 48))}</text></g>'
        )
    return "".join(parts)
