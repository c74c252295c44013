"""A value per run over time as inline SVG: a pipeline's durations or costs, run after run.

Built on ``loopml._svg`` (escaping, ``Frame``, round ticks) like the evaluation and data
charts, with a time axis of its own: ticks on round local times (every 10 min, 6 h, a day,
a week …) written in the viewer's time zone. Each run is a dot coloured by its status and
linked to its page, with a tooltip (``<title>``) giving its label, value and start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from loopml._svg import (
    MUTED,
    PALETTE,
    Frame,
    chart_open,
    escape,
    nice_range,
    no_data_svg,
)
from loopml.store.status import RunStatus

WIDTH, HEIGHT = 600, 230
LEFT, RIGHT, TOP, BOTTOM = 64, 30, 26, 40
STATUS_COLOURS: dict[str, str] = {
    RunStatus.SUCCEEDED: PALETTE[0],
    RunStatus.FAILED: PALETTE[3],
    RunStatus.CRASHED: PALETTE[3],
}
# Round time steps, seconds: the first that gives at most ``count`` ticks is used.
_STEPS: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
_STEPS += (10800, 21600, 43200, 86400, 172800, 604800, 1209600, 2592000, 7776000, 31536000)


@dataclass(frozen=True, slots=True)
class Point:
    """One run on the chart."""

    at: float  # Unix seconds
    value: float
    label: str  # e.g. "train#3"
    status: str = RunStatus.SUCCEEDED
    link: str = ""  # the run's page


def time_ticks(x0: float, x1: float, tz: tzinfo, count: int = 6) -> tuple[list[float], float]:
    """Round local times in ``[x0, x1]`` (at most about ``count``) and their step."""
    span = max(x1 - x0, 1.0)
    step = next((s for s in _STEPS if span / s <= count), _STEPS[-1])
    offset = datetime.fromtimestamp(x0, UTC).astimezone(tz).utcoffset()
    shift = offset.total_seconds() if offset is not None and step >= 3600 else 0.0
    first = math.ceil((x0 + shift) / step) * step - shift
    return [first + k * step for k in range(int((x1 - first) // step) + 1)], step


def time_label(at: float, step: float, span: float, tz: tzinfo) -> str:
    local = datetime.fromtimestamp(at, UTC).astimezone(tz)
    if step >= 86400:
        return local.strftime("%b %d")
    if span > 86400:
        return local.strftime("%m-%d %H:%M")
    return local.strftime("%H:%M" if step >= 60 else "%H:%M:%S")


def timeline_svg(
    title: str,
    points: Sequence[Point],
    *,
    tz: tzinfo,
    ylabel: str = "",
    yformat: Callable[[float], str] = lambda v: f"{v:.4g}",
    scale: float = 1.0,
) -> str:
    """A dot per point (and a thin line through them, in time order) on a local-time axis.

    ``scale`` divides the values for the y axis (e.g. 60 for minutes); ``yformat`` writes
    a value (unscaled) in the tooltips. Non-finite values are left out.
    """
    shown = sorted((p for p in points if math.isfinite(p.value)), key=lambda p: p.at)
    if not shown:
        return no_data_svg(title, width=WIDTH, height=HEIGHT)
    x0, x1 = shown[0].at, shown[-1].at
    pad = (x1 - x0) * 0.04 or 60.0
    x0, x1 = x0 - pad, x1 + pad
    top = max(p.value for p in shown) / scale
    y1 = nice_range(0.0, top * 1.08)[1] if top > 0 else 1.0
    frame = Frame(LEFT, TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM, x0, x1, 0.0, y1)
    parts = [chart_open(WIDTH, HEIGHT, title), _axes(frame, tz, ylabel)]
    xs = [p.at for p in shown]
    ys = [p.value / scale for p in shown]
    parts.append(
        f'<polyline points="{frame.points(xs, ys)}" fill="none" stroke="{MUTED}" '
        'stroke-width="1" stroke-opacity="0.6"/>'
    )
    for p in shown:
        when = time_label(p.at, 1, 0, tz)
        day = datetime.fromtimestamp(p.at, UTC).astimezone(tz).strftime("%Y-%m-%d")
        tip = f"{p.label} · {p.status} · {yformat(p.value)} · {day} {when}"
        colour = STATUS_COLOURS.get(p.status, MUTED)
        dot = (
            f'<circle class="point" cx="{frame.x(p.at):.1f}" cy="{frame.y(p.value / scale):.1f}" '
            f'r="4" fill="{colour}"><title>{escape(tip)}</title></circle>'
        )
        parts.append(f'<a href="{escape(p.link)}">{dot}</a>' if p.link else dot)
    parts.append("</svg>")
    return "".join(parts)


def _axes(frame: Frame, tz: tzinfo, ylabel: str) -> str:
    zone = getattr(tz, "key", None) or str(tz)
    span = frame.x1 - frame.x0
    return frame.axes(
        f"start time ({zone})",
        ylabel,
        xticks=time_ticks(frame.x0, frame.x1, tz),
        xformat=lambda at, step: time_label(at, step, span, tz),
    )
