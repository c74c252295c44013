"""Small pictures of metric series: a terminal sparkline and an inline SVG for notebooks.

Hand-written because both are a few lines and must work with no plotting library and no
JavaScript (the CLI and a notebook opened offline).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

_BARS = "▁▂▃▄▅▆▇█"


def _downsample(values: Sequence[float], width: int) -> list[float]:
    if len(values) <= width:
        return list(values)
    size = len(values) / width
    return [values[min(len(values) - 1, int(i * size))] for i in range(width)]


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """``▁▂▄▇`` for a series (NaN/Inf shown as a space)."""
    points = _downsample(values, width)
    finite = [v for v in points if math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    return "".join(
        _BARS[int((v - low) / span * (len(_BARS) - 1))] if math.isfinite(v) else " " for v in points
    )


def svg_line(
    name: str, steps: Sequence[int], values: Sequence[float], *, width: int = 320, height: int = 80
) -> str:
    """An inline SVG line chart of one series, with its name, range and last value."""
    pairs = [(s, v) for s, v in zip(steps, values, strict=True) if math.isfinite(v)]
    if len(pairs) < 2:
        return ""
    pairs = [pairs[int(i * len(pairs) / 400)] for i in range(400)] if len(pairs) > 400 else pairs
    xs = [p[0] for p in pairs]
    ys = [p[1] for p in pairs]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (width - 8) / ((x1 - x0) or 1)
    sy = (height - 24) / ((y1 - y0) or 1)
    path = " ".join(f"{4 + (x - x0) * sx:.1f},{height - 4 - (y - y0) * sy:.1f}" for x, y in pairs)
    label = html.escape(
        f"{name}: last {ys[-1]:.4g} (min {y0:.4g}, max {y1:.4g}, {len(values)} points)"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{label}">'
        f'<text x="4" y="12" font-size="11" font-family="sans-serif">{label}</text>'
        f'<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="{path}"/></svg>'
    )
