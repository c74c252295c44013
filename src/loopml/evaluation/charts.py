"""The charts of an evaluation report, as self-contained SVG strings.

An evaluation report is one HTML file that must open anywhere, offline, years later: no CDN,
no JavaScript, no plotting library. So each chart is a few dozen SVG elements written here, and
the same string shows in a notebook (``IPython.display.SVG``) and in the web UI.

Conventions, shared with the data charts through ``loopml._svg``: every text (model names,
class labels, slice values: all user data) is escaped; numbers are written with fixed decimals;
NaN and infinite values never reach the SVG (points with one are skipped, a metric without a
value reads "n/a"); empty input gives a small "no data" chart instead of an exception. Curves
longer than ``max_points`` are thinned to exact points of the curve (``curves._thin``), and
scatter plots draw a deterministic sample (``curves.sample_points``), so a report over a
million rows stays small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from loopml._svg import (
    INK,
    MUTED,
    PALETTE,
    Frame,
    chart_open,
    escape,
    legend,
    nice_range,
    no_data_svg,
    short,
    tick_label,
    tick_step,
)
from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import ArrayLike

WIDTH, PLOT_H = 380, 240
LEFT, RIGHT, TOP, BOTTOM = 54, 16, 28, 40
ROW = 14
MAX_LINE_POINTS = 1000


def roc_svg(
    curves: Sequence[tuple[str, ArrayLike, ArrayLike, float | None]],
    *,
    title: str = "ROC curve",
    max_points: int = MAX_LINE_POINTS,
) -> str:
    """ROC curves of several models on one plot, the chance diagonal, and a legend with AUCs.

    Args:
        curves: ``(model name, fpr, tpr, auc)`` per model; ``auc`` may be None.
        title: drawn on top and as the accessible ``<title>``.
        max_points: longer curves are thinned to this many exact points.
    """
    series = [
        (_named(name, "AUC", auc), *_pairs(fpr, tpr, max_points)) for name, fpr, tpr, auc in curves
    ]
    return _line_chart(
        title,
        series,
        x_range=(0.0, 1.0),
        y_range=(0.0, 1.0),
        labels=("false positive rate", "true positive rate"),
        references=[((0.0, 0.0, 1.0, 1.0), "chance")],
    )


def pr_svg(
    curves: Sequence[tuple[str, ArrayLike, ArrayLike, float | None]],
    *,
    base_rate: float | None = None,
    title: str = "Precision-recall curve",
    max_points: int = MAX_LINE_POINTS,
) -> str:
    """Precision-recall curves of several models, with the base rate (a model that guesses).

    Args:
        curves: ``(model name, recall, precision, average precision)``; the last may be None.
        base_rate: share of positives in the test rows, drawn as a dashed horizontal line.
    """
    series = [
        (_named(name, "AP", ap), *_pairs(recall, precision, max_points))
        for name, recall, precision, ap in curves
    ]
    references = []
    if base_rate is not None and math.isfinite(base_rate):
        references.append(((0.0, base_rate, 1.0, base_rate), f"base rate {base_rate:.3f}"))
    return _line_chart(
        title,
        series,
        x_range=(0.0, 1.0),
        y_range=(0.0, 1.0),
        labels=("recall", "precision"),
        references=references,
    )


def calibration_svg(
    curves: Sequence[tuple[str, ArrayLike, ArrayLike, ArrayLike | None]],
    *,
    title: str = "Calibration",
) -> str:
    """Reliability curves: fraction of positives against mean predicted probability per bin.

    Args:
        curves: ``(model name, mean_predicted, fraction_positive, count)`` per model, as
            ``curves.calibration`` returns them; ``count`` (rows per bin) may be None. Each
            bin is a marker whose tooltip gives its numbers; the diagonal is perfect
            calibration.
    """
    import numpy as np

    series = []
    for name, predicted, positive, count in curves:
        xs, ys = _pairs(predicted, positive, MAX_LINE_POINTS)
        counts = np.asarray(count if count is not None else [], dtype=np.float64).ravel()
        keep = np.isfinite(np.asarray(predicted, dtype=np.float64).ravel())
        keep &= np.isfinite(np.asarray(positive, dtype=np.float64).ravel())
        shown = counts[keep].tolist() if counts.size == keep.size else []
        series.append((name, xs, ys, shown))
    return _line_chart(
        title,
        [(name, xs, ys) for name, xs, ys, _ in series],
        x_range=(0.0, 1.0),
        y_range=(0.0, 1.0),
        labels=("mean predicted probability", "fraction of positives"),
        references=[((0.0, 0.0, 1.0, 1.0), "perfectly calibrated")],
        markers=[counts for *_, counts in series],
    )


def confusion_svg(
    matrix: ArrayLike, labels: Sequence[str], *, title: str = "Confusion matrix"
) -> str:
    """A heat-map table: rows are true classes, columns predicted; count and row share per cell.

    The shade is the share of the true class's rows (its recall on the diagonal), so a rare
    class is as readable as a common one; text turns white on dark cells. Small cells keep
    their numbers in the tooltip only.
    """
    import numpy as np

    counts = np.asarray(matrix, dtype=np.float64)
    k = counts.shape[0] if counts.ndim == 2 else 0
    if k == 0 or counts.shape != (k, k):
        return no_data_svg(title)
    if len(labels) != k:
        raise InvalidParameterError(
            f"confusion_svg: {len(labels)} labels for a {k}×{k} matrix; expected one per class."
        )
    counts = np.where(np.isfinite(counts), counts, 0.0)  # a NaN count is drawn as 0
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    cell = max(16, min(56, 480 // k))
    label_w, head = 110, TOP + 30
    width = LEFT + label_w + k * cell + RIGHT
    height = head + k * cell + 12
    names = [str(label) for label in labels]
    parts = [chart_open(width, height, title)]
    x0 = LEFT + label_w
    parts.append(
        f'<text x="{x0 + k * cell / 2:.1f}" y="{TOP + 4}" text-anchor="middle" fill="{INK}">'
        "predicted</text>"
        f'<text x="14" y="{head + k * cell / 2:.1f}" text-anchor="middle" fill="{INK}" '
        f'transform="rotate(-90 14 {head + k * cell / 2:.1f})">true</text>'
    )
    chars = max(1, cell // 7)
    for j, name in enumerate(names):
        parts.append(
            f'<text x="{x0 + (j + 0.5) * cell:.1f}" y="{head - 6}" text-anchor="middle" '
            f'fill="{INK}"><title>{escape(name)}</title>{escape(short(name, chars))}</text>'
        )
    for i, name in enumerate(names):
        y = head + i * cell
        parts.append(
            f'<text x="{x0 - 6}" y="{y + cell / 2 + 4:.1f}" text-anchor="end" fill="{INK}">'
            f"<title>{escape(name)}</title>{escape(short(name, 16))}</text>"
        )
        for j in range(k):
            fill, ink = _shade(float(shares[i, j]))
            n, share = int(counts[i, j]), float(shares[i, j])
            share_text = f"{100 * share:.1f}%" if totals[i, 0] > 0 else "–"
            tip = f"true {name}, predicted {names[j]}: {n} ({share_text} of the row)"
            x = x0 + j * cell
            text = ""
            if cell >= 40:
                text = (
                    f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 - 1:.1f}" text-anchor="middle" '
                    f'fill="{ink}">{n}</text><text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 11:.1f}" '
                    f'text-anchor="middle" font-size="9" fill="{ink}">{share_text}</text>'
                )
            elif cell >= 24:
                text = (
                    f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" text-anchor="middle" '
                    f'font-size="9" fill="{ink}">{n}</text>'
                )
            parts.append(
                f"<g><title>{escape(tip)}</title>"
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" '
                f'stroke="#fff"/>{text}</g>'
            )
    parts.append("</svg>")
    return "".join(parts)


def residuals_svg(
    y: ArrayLike, yhat: ArrayLike, *, title: str = "Residuals", max_points: int = 2000
) -> str:
    """Residual (actual − predicted) against predicted, with the zero line; a sample if huge."""
    import numpy as np

    actual, predicted = _same_length(y, yhat, "residuals_svg")
    return _scatter(
        title,
        predicted,
        actual - predicted,
        labels=("predicted", "residual (actual − predicted)"),
        max_points=max_points,
        reference="zero",
        total=int(np.count_nonzero(np.isfinite(actual) & np.isfinite(predicted))),
    )


def predicted_vs_actual_svg(
    y: ArrayLike, yhat: ArrayLike, *, title: str = "Predicted vs actual", max_points: int = 2000
) -> str:
    """Predicted against actual on the same scale, with the line y = x (perfect predictions)."""
    import numpy as np

    actual, predicted = _same_length(y, yhat, "predicted_vs_actual_svg")
    return _scatter(
        title,
        actual,
        predicted,
        labels=("actual", "predicted"),
        max_points=max_points,
        reference="diagonal",
        total=int(np.count_nonzero(np.isfinite(actual) & np.isfinite(predicted))),
    )


def forecast_svg(
    t: ArrayLike,
    actual: ArrayLike,
    forecasts: Mapping[Any, tuple[ArrayLike, ArrayLike]],
    *,
    title: str = "Forecast",
    max_points: int = MAX_LINE_POINTS,
) -> str:
    """The actual series and each forecast (per horizon or fold label) as lines over time.

    ``t`` may be numbers or datetimes (numpy ``datetime64``, pandas timestamps); the forecasts
    give their own times on the same axis.
    """
    to_x, xformat = _time_axis([t, *(ft for ft, _ in forecasts.values())])
    series = [("actual", *_pairs(to_x(t), actual, max_points, scaled=True))]
    series += [
        (str(key), *_pairs(to_x(ft), fy, max_points, scaled=True))
        for key, (ft, fy) in forecasts.items()
    ]
    return _line_chart(title, series, labels=("time", ""), xformat=xformat, colours=[INK, *PALETTE])


def metric_bars_svg(
    rows: Sequence[tuple[str, float, float | None, float | None]],
    *,
    title: str = "",
    metric: str = "",
) -> str:
    """One row per label: a bar and dot at the value, whiskers over its confidence interval.

    Used for per-slice metrics and the leaderboard. ``rows`` are ``(label, value, low,
    high)``; ``low``/``high`` may be None (no whisker). A NaN value reads "n/a" and draws
    nothing, a NaN bound draws no whisker.
    """
    title = title or metric or "Metric"
    if not rows:
        return no_data_svg(title)
    finite = [
        float(v)
        for _, value, low, high in rows
        for v in (value, low, high)
        if v is not None and math.isfinite(v)
    ]
    # the axis spans the values, not zero: AUCs of 0.91 and 0.93 must look different; bars
    # from zero are drawn only when zero is on the axis, dots and whiskers always
    low_x, high_x = nice_range(min(finite, default=0.0), max(finite, default=1.0))
    label_w, text_w, row = 150, 130, 20
    plot_w = WIDTH - label_w - text_w
    frame = Frame(label_w, TOP, plot_w, row * len(rows), low_x, high_x, 0.0, 1.0)
    bars = low_x <= 0.0 <= high_x
    step = tick_step(low_x, high_x) / 10
    height = TOP + row * len(rows) + BOTTOM
    parts = [chart_open(WIDTH, height, title), frame.axes(metric, "", yticks=False)]
    for i, (label, value, low, high) in enumerate(rows):
        cy = TOP + (i + 0.5) * row
        name = str(label)
        parts.append(
            f'<text x="{label_w - 6}" y="{cy + 4:.1f}" text-anchor="end" fill="{INK}">'
            f"<title>{escape(name)}</title>{escape(short(name, 24))}</text>"
        )
        if value is None or not math.isfinite(value):
            parts.append(_value_text(WIDTH - text_w + 6, cy, "n/a"))
            continue
        bounds = [b for b in (low, high) if b is not None and math.isfinite(b)]
        text = tick_label(value, step)
        if len(bounds) == 2:
            lo, hi = sorted(bounds)
            text += f" [{tick_label(lo, step)}, {tick_label(hi, step)}]"
            xl, xh = frame.x(lo), frame.x(hi)
            parts.append(
                f'<path d="M{xl:.1f},{cy:.1f}H{xh:.1f}M{xl:.1f},{cy - 4:.1f}V{cy + 4:.1f}'
                f'M{xh:.1f},{cy - 4:.1f}V{cy + 4:.1f}" stroke="{INK}" fill="none"/>'
            )
        x_zero, x_value = frame.x(0.0), frame.x(value)
        bar = (
            f'<rect x="{min(x_zero, x_value):.1f}" y="{cy - 6:.1f}" '
            f'width="{abs(x_value - x_zero):.1f}" height="12" fill="{PALETTE[0]}" '
            'fill-opacity="0.3"/>'
            if bars
            else ""
        )
        parts.append(
            f"<g><title>{escape(name)}: {escape(text)}</title>{bar}"
            f'<circle cx="{x_value:.1f}" cy="{cy:.1f}" r="4" fill="{PALETTE[0]}"/></g>'
        )
        parts.append(_value_text(WIDTH - text_w + 6, cy, text))
    parts.append("</svg>")
    return "".join(parts)


# -- shared drawing -------------------------------------------------------------------------

Series = tuple[str, list[float], list[float]]


def _line_chart(
    title: str,
    series: Sequence[Series],
    *,
    labels: tuple[str, str],
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    references: Sequence[tuple[tuple[float, float, float, float], str]] = (),
    markers: Sequence[list[float]] | None = None,
    xformat: Callable[[float, float], str] = tick_label,
    colours: Sequence[str] = PALETTE,
) -> str:
    drawn = [s for s in series if s[1]]
    if not drawn:
        return no_data_svg(title)
    xs = [v for _, x, _ in drawn for v in x]
    ys = [v for _, _, y in drawn for v in y]
    x0, x1 = x_range or nice_range(min(xs), max(xs))
    y0, y1 = y_range or nice_range(min(ys), max(ys))
    frame = Frame(LEFT, TOP, WIDTH - LEFT - RIGHT, PLOT_H, x0, x1, y0, y1)
    entries = [(name, colours[i % len(colours)]) for i, (name, _, _) in enumerate(series)]
    entries += [(text, MUTED) for _, text in references]
    height = TOP + PLOT_H + BOTTOM + ROW * len(entries) + 6
    parts = [chart_open(WIDTH, height, title), frame.axes(*labels, xformat=xformat)]
    parts += [
        f"<g><title>{escape(text)}</title>{frame.line(*ends)}</g>" for ends, text in references
    ]
    for i, (name, x, y) in enumerate(series):
        colour = colours[i % len(colours)]
        if not x:
            continue
        parts.append(
            f'<polyline points="{frame.points(x, y)}" fill="none" stroke="{colour}" '
            f'stroke-width="1.8"><title>{escape(name)}</title></polyline>'
        )
        counts = markers[i] if markers is not None else None
        if counts is not None:
            for k, (a, b) in enumerate(zip(x, y, strict=True)):
                n = f", {int(counts[k])} rows" if k < len(counts) else ""
                parts.append(
                    f'<circle cx="{frame.x(a):.1f}" cy="{frame.y(b):.1f}" r="3" fill="{colour}">'
                    f"<title>{escape(name)}: predicted {a:.3f}, observed {b:.3f}{n}</title></circle>"
                )
    parts.append(legend(entries, x=LEFT, y=TOP + PLOT_H + BOTTOM - 4))
    parts.append("</svg>")
    return "".join(parts)


def _scatter(
    title: str,
    x: Any,
    y: Any,
    *,
    labels: tuple[str, str],
    max_points: int,
    reference: str,
    total: int,
) -> str:
    from loopml.evaluation.curves import sample_points

    xs, ys = sample_points(x, y, max_points)
    if xs.size == 0:
        return no_data_svg(title)
    if reference == "diagonal":  # one scale for both axes, so y = x is the 45° line
        low, high = nice_range(min(xs.min(), ys.min()), max(xs.max(), ys.max()))
        x0, x1, y0, y1 = low, high, low, high
    else:
        (x0, x1), (y0, y1) = nice_range(xs.min(), xs.max()), nice_range(ys.min(), ys.max())
    frame = Frame(LEFT, TOP, WIDTH - LEFT - RIGHT, PLOT_H, x0, x1, y0, y1)
    shown = f"{xs.size} of {total} rows" if xs.size < total else f"{total} rows"
    height = TOP + PLOT_H + BOTTOM + ROW + 6
    parts = [chart_open(WIDTH, height, f"{title} ({shown})"), frame.axes(*labels)]
    if reference == "diagonal":
        parts.append(f"<g><title>y = x</title>{frame.line(x0, x0, x1, x1)}</g>")
    elif y0 <= 0 <= y1:
        parts.append(f"<g><title>zero</title>{frame.line(x0, 0.0, x1, 0.0)}</g>")
    parts.append(f'<g fill="{PALETTE[0]}" fill-opacity="0.45">')
    parts += [
        f'<circle cx="{frame.x(a):.1f}" cy="{frame.y(b):.1f}" r="2"/>'
        for a, b in zip(xs.tolist(), ys.tolist(), strict=True)
    ]
    parts.append(
        f'</g><text x="{LEFT}" y="{TOP + PLOT_H + BOTTOM + 8}" fill="{MUTED}">'
        f"{escape(shown)}</text></svg>"
    )
    return "".join(parts)


def _pairs(
    xs: ArrayLike, ys: ArrayLike, max_points: int, *, scaled: bool = False
) -> tuple[list[float], list[float]]:
    """The finite ``(x, y)`` pairs as lists, thinned to ``max_points`` exact points.

    NaN and infinite values are skipped here, so they never reach the SVG. ``scaled`` thins
    in units of each axis's range (for series whose axes have different units).
    """
    import numpy as np

    from loopml.evaluation.curves import _thin

    x = np.asarray(xs, dtype=np.float64).ravel()
    y = np.asarray(ys, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InvalidParameterError(f"{x.size} x values and {y.size} y values; expected pairs.")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size > max_points:
        if scaled:
            span_x, span_y = np.ptp(x) or 1.0, np.ptp(y) or 1.0
            kept = _thin(x / span_x, y / span_y, max_points)
        else:
            kept = _thin(x, y, max_points)
        x, y = x[kept], y[kept]
    return x.tolist(), y.tolist()


def _same_length(y: ArrayLike, yhat: ArrayLike, where: str) -> tuple[Any, Any]:
    import numpy as np

    actual = np.asarray(y, dtype=np.float64).ravel()
    predicted = np.asarray(yhat, dtype=np.float64).ravel()
    if actual.shape != predicted.shape:
        raise InvalidParameterError(
            f"{where}: {actual.size} actual values and {predicted.size} predictions; "
            "expected one prediction per row."
        )
    return actual, predicted


def _time_axis(
    columns: Sequence[ArrayLike],
) -> tuple[Callable[[ArrayLike], Any], Callable[[float, float], str]]:
    """Times as plotted numbers: datetimes become seconds, labelled back as dates."""
    import numpy as np

    def is_time(c: ArrayLike) -> bool:
        values = np.asarray(c)
        # datetime objects (e.g. a list of ``datetime``) arrive as an object array
        return values.dtype.kind == "M" or (
            values.dtype.kind == "O" and values.size > 0 and hasattr(values.flat[0], "isoformat")
        )

    if not any(is_time(c) for c in columns):
        return (lambda c: np.asarray(c, dtype=np.float64)), tick_label

    def to_seconds(c: ArrayLike) -> Any:
        when = np.asarray(c, dtype="datetime64[s]")
        return np.where(np.isnat(when), np.nan, when.astype(np.int64).astype(np.float64))

    def as_date(value: float, step: float) -> str:
        unit: Literal["D", "m"] = "D" if step >= 86400 else "m"
        return str(np.datetime_as_string(np.datetime64(int(value), "s"), unit=unit))

    return to_seconds, as_date


def _named(name: str, what: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return str(name)
    return f"{name} ({what} {value:.3f})"


def _shade(share: float) -> tuple[str, str]:
    """Fill from white to dark blue by ``share``, and a text colour readable on it."""
    light, dark = (247, 251, 255), (8, 48, 107)
    rgb = [round(a + (b - a) * min(max(share, 0.0), 1.0)) for a, b in zip(light, dark, strict=True)]
    luminance = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255
    return "#{:02x}{:02x}{:02x}".format(*rgb), ("#fff" if luminance < 0.5 else INK)


def _value_text(x: float, y: float, text: str) -> str:
    return f'<text x="{x:.1f}" y="{y + 4:.1f}" fill="{INK}">{escape(text)}</text>'


__all__ = [
    "calibration_svg",
    "confusion_svg",
    "forecast_svg",
    "metric_bars_svg",
    "pr_svg",
    "predicted_vs_actual_svg",
    "residuals_svg",
    "roc_svg",
]
