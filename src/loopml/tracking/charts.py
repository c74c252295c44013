"""Small pictures: metric series (terminal sparkline, inline SVG) and a DAG (inline SVG).

Hand-written because each is a few lines and must work with no plotting or graph library
and no JavaScript (the CLI, and a notebook opened offline).
"""

from __future__ import annotations

import html
import math
from collections.abc import Collection, Sequence
from typing import Any

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
DETAIL_H = 46  # a box with a second line (status, duration, "cached")


def step_edges(steps: Sequence[Any], links: Sequence[Any]) -> list[tuple[str, str]]:
    """The edges of a stored run's DAG, from its lineage: step A -> step B when B read an
    artifact (by digest) that A produced in the same run.

    ``steps`` have ``.id`` and ``.name`` (``StepRunRecord``); ``links`` have ``.step_run_id``,
    ``.direction`` and ``.digest`` (``ArtifactLink``, from ``Client.links(run=...)``).
    """
    by_id = {s.id: s.name for s in steps}
    produced: dict[str, str] = {}
    consumed: list[tuple[str, str]] = []
    for link in links:
        step = by_id.get(link.step_run_id or "")
        if step is None:
            continue
        if link.direction == "output":
            produced[link.digest] = step
        elif link.direction == "input":
            consumed.append((link.digest, step))
    edges = [(produced[d], step) for d, step in consumed if d in produced and produced[d] != step]
    return list(dict.fromkeys(edges))


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def dag_svg(
    names: list[str],
    edges: list[tuple[str, str]],
    *,
    status: dict[str, str] | None = None,
    cached: Collection[str] = (),
    durations: dict[str, float | None] | None = None,
    links: dict[str, str] | None = None,
) -> str:
    """SVG of a DAG given in topological order; ``status`` (step -> status) colours a run's boxes.

    With ``durations`` (step -> seconds) each box gets a second line: its status, its duration
    and "cached" for the steps in ``cached`` (drawn with a dashed border). ``links`` (step ->
    URL) makes a box a link. Layout: a step's column is the length of the longest path
    reaching it, so edges always point right; steps in a column are stacked in order.
    """
    if not names:
        return ""
    detailed = durations is not None
    box_h = DETAIL_H if detailed else BOX_H
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
        name: (PAD + col * (BOX_W + GAP_X), PAD + row * (box_h + GAP_Y))
        for col, names in columns.items()
        for row, name in enumerate(names)
    }
    width = PAD * 2 + len(columns) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + max(len(v) for v in columns.values()) * (box_h + GAP_Y) - GAP_Y
    fills: dict[str, str] = {
        StepStatus.SUCCEEDED: "#dafbe1",
        StepStatus.FAILED: "#ffebe9",
        StepStatus.CRASHED: "#ffebe9",
        StepStatus.SKIPPED: "#f6f8fa",
        StepStatus.RUNNING: "#fff8c5",
        StepStatus.CANCELLED: "#f6f8fa",
    }
    strokes: dict[str, str] = {
        StepStatus.SUCCEEDED: "#1a7f37",
        StepStatus.FAILED: "#cf222e",
        StepStatus.CRASHED: "#cf222e",
        StepStatus.RUNNING: "#9a6700",
    }
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img" '
        'aria-label="pipeline DAG">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>',
    ]
    for src, dst in sorted(set(edges)):
        if src not in pos or dst not in pos:
            continue
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        parts.append(
            f'<line x1="{x1 + BOX_W}" y1="{y1 + box_h / 2}" x2="{x2}" y2="{y2 + box_h / 2}" '
            'stroke="#57606a" marker-end="url(#arrow)"/>'
        )
    for name in names:
        x, y = pos[name]
        state = (status or {}).get(name)
        fill = fills.get(state or "", "#ddf4ff")
        label = html.escape(name if len(name) <= 20 else name[:19] + "…")
        is_cached = name in cached
        detail = ""
        if detailed:
            seconds = (durations or {}).get(name)
            words = [str(state) if state else "", "" if seconds is None else _seconds(seconds)]
            words.append("cached" if is_cached else "")
            detail = " · ".join(w for w in words if w)
        title = html.escape(name + (f": {detail or state}" if (detail or state) else ""))
        stroke = strokes.get(state or "", "#0969da") if detailed else "#0969da"
        dash = ' stroke-dasharray="5 3"' if is_cached else ""
        text_y = y + (16 if detailed else box_h / 2 + 4)
        node = (
            f'<g class="node" data-step="{html.escape(name)}"><title>{title}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{box_h}" rx="6" fill="{fill}" '
            f'stroke="{stroke}"{dash}/><text x="{x + BOX_W / 2}" y="{text_y}" '
            f'text-anchor="middle" fill="#1f2328">{label}</text>'
        )
        if detailed:
            node += (
                f'<text class="detail" x="{x + BOX_W / 2}" y="{y + 34}" text-anchor="middle" '
                f'font-size="10.5" fill="#57606a">{html.escape(detail)}</text>'
            )
        node += "</g>"
        href = (links or {}).get(name)
        if href:
            node = f'<a href="{html.escape(href)}">{node}</a>'
        parts.append(node)
    parts.append("</svg>")
    return "".join(parts)


def svg_lines(
    title: str,
    series: Sequence[tuple[str, Sequence[int], Sequence[float]]],
    *,
    width: int = 460,
    height: int = 240,
    xlabel: str = "step",
) -> str:
    """One chart of several series of the same metric (one colour per series, a legend).

    ``series`` is ``(label, steps, values)`` per series, e.g. one per run when comparing
    runs; at most 400 points of each are drawn (callers downsample long series first).
    When every series has one point (a final score per run), each is a dot on its own
    stem, side by side, labelled with its value. Non-finite values are left out.
    """
    from loopml._svg import (
        PALETTE,
        Frame,
        chart_open,
        escape,
        legend,
        nice_range,
        no_data_svg,
        short,
    )

    cleaned = []
    for label, steps, values in series:
        pairs = [(s, v) for s, v in zip(steps, values, strict=True) if math.isfinite(v)]
        if len(pairs) > 400:
            pairs = [pairs[int(i * len(pairs) / 400)] for i in range(400)]
        cleaned.append((label, pairs))
    every = [p for _, pairs in cleaned for p in pairs]
    if not every:
        return no_data_svg(title, width=width, height=height)
    # One value per series (e.g. a final score per run): a dot per series, side by side,
    # instead of dots stacked on one step where equal values would hide each other.
    single = all(len(pairs) <= 1 for _, pairs in cleaned)
    if single:
        x0, x1 = -0.5, len(cleaned) - 0.5
    else:
        x0, x1 = min(p[0] for p in every), max(p[0] for p in every)
        if x0 == x1:
            x0, x1 = x0 - 1, x1 + 1
    y0, y1 = nice_range(min(p[1] for p in every), max(p[1] for p in every))
    legend_h = 14 * len(cleaned) + 6
    frame = Frame(
        left=56, top=34, width=width - 72, height=height - 34 - 40 - legend_h,
        x0=x0, x1=x1, y0=y0, y1=y1,
    )  # fmt: skip
    if single:
        axes = frame.axes("", "", xformat=lambda v, s: "", grid=False)
    else:
        axes = frame.axes(xlabel, "")
    parts = [chart_open(width, height, title), axes]
    entries = []
    bottom = frame.top + frame.height
    for i, (label, pairs) in enumerate(cleaned):
        colour = PALETTE[i % len(PALETTE)]
        last = f"{pairs[-1][1]:.4g}" if pairs else "no points"
        entries.append((f"{label}: {last}", colour))
        xs = [float(i if single else p[0]) for p in pairs]
        ys = [p[1] for p in pairs]
        body = ""
        if single and pairs:
            cx, cy = frame.x(xs[0]), frame.y(ys[0])
            body += (
                f'<line x1="{cx:.1f}" y1="{bottom:.1f}" x2="{cx:.1f}" y2="{cy:.1f}" '
                f'stroke="{colour}" stroke-dasharray="2 3"/>'
                f'<text x="{cx:.1f}" y="{cy - 7:.1f}" text-anchor="middle">{escape(last)}</text>'
            )
        if single:
            body += (
                f'<text x="{frame.x(i):.1f}" y="{bottom + 13:.1f}" text-anchor="middle">'
                f"{escape(short(label, 16))}</text>"
            )
        if len(pairs) >= 2:
            body += (
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
                f'points="{frame.points(xs, ys)}"/>'
            )
        if len(pairs) <= 60:
            body += "".join(
                f'<circle cx="{frame.x(a):.1f}" cy="{frame.y(b):.1f}" r="3.5" fill="{colour}"/>'
                for a, b in zip(xs, ys, strict=True)
            )
        parts.append(
            f'<g class="series" data-series="{escape(label)}">'
            f"<title>{escape(label)}: {escape(last)}</title>{body}</g>"
        )
    parts.append(legend(entries, x=frame.left, y=frame.top + frame.height + 34))
    parts.append("</svg>")
    return "".join(parts)
