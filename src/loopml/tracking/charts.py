"""Small pictures: metric series (terminal sparkline, inline SVG) and a DAG (inline SVG).

Hand-written because each is a few lines and must work with no plotting or graph library
and no JavaScript (the CLI, and a notebook opened offline).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from loopml.store.status import StepStatus

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


BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 150, 34, 50, 16, 8


def dag_svg(
    names: list[str], edges: list[tuple[str, str]], *, status: dict[str, str] | None = None
) -> str:
    """SVG of a DAG given in topological order; ``status`` (step -> status) colours a run's boxes.

    Layout: a step's column is the length of the longest path reaching it, so edges always
    point right; steps in a column are stacked in order.
    """
    if not names:
        return ""
    upstream: dict[str, set[str]] = {n: set() for n in names}
    for src, dst in edges:
        upstream.setdefault(dst, set()).add(src)
    depth: dict[str, int] = {}
    for name in names:
        depth[name] = 1 + max((depth.get(u, 0) for u in upstream[name]), default=-1)
    columns: dict[int, list[str]] = {}
    for name in names:
        columns.setdefault(depth[name], []).append(name)
    pos = {
        name: (PAD + col * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
        for col, names in columns.items()
        for row, name in enumerate(names)
    }
    width = PAD * 2 + len(columns) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + max(len(v) for v in columns.values()) * (BOX_H + GAP_Y) - GAP_Y
    fills: dict[str, str] = {
        StepStatus.SUCCEEDED: "#dafbe1",
        StepStatus.FAILED: "#ffebe9",
        StepStatus.CRASHED: "#ffebe9",
        StepStatus.SKIPPED: "#f6f8fa",
        StepStatus.RUNNING: "#fff8c5",
        StepStatus.CANCELLED: "#f6f8fa",
    }
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12" role="img" aria-label="pipeline DAG">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>',
    ]
    for src, dst in sorted(set(edges)):
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        parts.append(
            f'<line x1="{x1 + BOX_W}" y1="{y1 + BOX_H / 2}" x2="{x2}" y2="{y2 + BOX_H / 2}" '
            'stroke="#57606a" marker-end="url(#arrow)"/>'
        )
    for name in names:
        x, y = pos[name]
        state = (status or {}).get(name)
        fill = fills.get(state or "", "#ddf4ff")
        label = html.escape(name if len(name) <= 20 else name[:19] + "…")
        title = html.escape(name + (f": {state}" if state else ""))
        parts.append(
            f'<g><title>{title}</title><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{fill}" stroke="#0969da"/><text x="{x + BOX_W / 2}" y="{y + BOX_H / 2 + 4}" '
            f'text-anchor="middle">{label}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
