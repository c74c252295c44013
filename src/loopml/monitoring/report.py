"""Charts of a monitor over time, and the self-contained HTML report of ``monitor report``.

Charts are inline SVG (the ``_svg`` family the drift and evaluation reports use): PSI of
the features that moved most, predictions per window, live metrics beside the estimated
ones (with their intervals), the prediction mix. The web UI's monitor page shows the same
charts; the report adds the newest window's drift report and the alerts. No script, no
network: a saved file opens anywhere.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.store.monitors import AlertRecord, MonitorRecord, WindowRecord

if TYPE_CHECKING:
    from loopml.tracking.client import Client

#: Features drawn on the drift chart: the ones with the highest PSI over the windows.
TOP_FEATURES = 6


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _chart(
    title: str, series: Sequence[tuple[str, Sequence[float], Sequence[float]]], xlabel: str
) -> str:
    from loopml._svg import no_data_svg
    from loopml.tracking.charts import svg_lines

    kept = [(label, list(range(len(ys))), ys) for label, _, ys in series if ys]
    if not kept:
        return no_data_svg(title)
    return svg_lines(title, kept, xlabel=xlabel)


def psi_series(windows: Sequence[WindowRecord]) -> list[tuple[str, list[float], list[float]]]:
    """PSI per window of the ``TOP_FEATURES`` features that reached the highest PSI."""
    per: dict[str, list[float]] = {}
    for i, w in enumerate(windows):
        for c in (w.stats.get("drift") or {}).get("columns") or []:
            per.setdefault(c["column"], [float("nan")] * len(windows))[i] = _f(
                (c.get("statistics") or {}).get("psi")
            )
    ranked = sorted(per, key=lambda k: -max((v for v in per[k] if v == v), default=0.0))
    xs = [w.start for w in windows]
    return [(f"psi {name}", xs, per[name]) for name in ranked[:TOP_FEATURES]]


def metric_series(windows: Sequence[WindowRecord]) -> list[tuple[str, list[float], list[float]]]:
    """Live and estimated metrics per window (and the estimate's interval)."""
    xs = [w.start for w in windows]
    out = []
    for name in ("roc_auc", "accuracy", "rmse"):
        live = [
            _f(
                (((w.stats.get("performance") or {}).get("live") or {}).get("metrics") or {}).get(
                    name
                )
            )
            for w in windows
        ]
        est = [
            (((w.stats.get("performance") or {}).get("estimated") or {}).get("metrics") or {}).get(
                name
            )
            or {}
            for w in windows
        ]
        if any(v == v for v in live):
            out.append((f"live {name}", xs, live))
        if any(e for e in est):
            out.append((f"estimated {name}", xs, [_f(e.get("value")) for e in est]))
            out.append((f"estimated {name} low", xs, [_f(e.get("low")) for e in est]))
            out.append((f"estimated {name} high", xs, [_f(e.get("high")) for e in est]))
        if out:
            break
    return out


def mix_series(windows: Sequence[WindowRecord]) -> list[tuple[str, list[float], list[float]]]:
    xs = [w.start for w in windows]
    classes: list[str] = []
    for w in windows:
        for k in (w.stats.get("prediction") or {}).get("shares") or {}:
            if k not in classes:
                classes.append(k)
    if classes:
        return [
            (
                f"share {k}",
                xs,
                [
                    _f(((w.stats.get("prediction") or {}).get("shares") or {}).get(k, 0))
                    for w in windows
                ],
            )
            for k in classes[:6]
        ]
    return [
        (
            f"prediction q{q}",
            xs,
            [
                _f(((w.stats.get("prediction") or {}).get("quantiles") or {}).get(q))
                for w in windows
            ],
        )
        for q in ("0.05", "0.5", "0.95")
    ]


def charts(windows: Sequence[WindowRecord]) -> dict[str, str]:
    """The monitor's charts as SVG, by name (the report and the web UI draw the same)."""
    xlabel = (
        f"window ({_day(windows[0].start)} … {_day(windows[-1].start)} UTC)"
        if windows
        else "window"
    )
    rows = [("predictions", [w.start for w in windows], [float(w.rows) for w in windows])]
    labels = [("labels", [w.start for w in windows], [float(w.labels) for w in windows])]
    return {
        "drift": _chart("PSI of the features that moved most", psi_series(windows), xlabel),
        "traffic": _chart("Predictions and labels per window", rows + labels, xlabel),
        "performance": _chart("Live and estimated performance", metric_series(windows), xlabel),
        "mix": _chart("Prediction mix", mix_series(windows), xlabel),
    }


_CSS = """
body{font-family:system-ui,sans-serif;font-size:14px;color:#222;margin:24px;max-width:1100px}
table{border-collapse:collapse}th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:16px}.alert{color:#b00020}
""".strip()


def page(
    record: MonitorRecord, windows: Sequence[WindowRecord], alerts: Sequence[AlertRecord]
) -> str:
    """The whole HTML page of ``monitor report``."""
    from loopml.data.drift_html import report_html
    from loopml.data.drift_report import DriftReport
    from loopml.monitoring.summary import window_rows

    e = html.escape
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f"<title>Monitor {e(record.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Monitor {e(record.name)}</h1>",
        f"<p>{e(record.model)} against {e(record.reference)}; {len(windows)} window(s)"
        + (f" from {_day(windows[0].start)} to {_day(windows[-1].end)} UTC" if windows else "")
        + f"; {len(alerts)} alert(s).</p>",
        '<div class="charts">',
        *charts(windows).values(),
        "</div>",
    ]
    if alerts:
        parts.append(
            "<h2>Alerts</h2><table><tr><th>window (UTC)</th><th>rule</th><th>message</th>"
            "<th>actions</th></tr>"
        )
        for a in alerts:
            done = []
            if a.notified_at:
                done.append("webhook sent")
            if a.notify_error:
                done.append(f"webhook failed: {a.notify_error}")
            if a.run_id:
                done.append(f"retrain run {a.run_id}")
            if a.promotion:
                done.append(str(a.promotion.get("summary", "")))
            parts.append(
                f'<tr><td>{_day(a.window_start)}</td><td class="alert">{e(a.rule)}</td>'
                f"<td>{e(a.message)}</td><td>{e('; '.join(done)) or '–'}</td></tr>"
            )
        parts.append("</table>")
    if windows:
        parts.append(
            "<h2>Windows</h2><table><tr><th>window (UTC)</th><th>rows</th><th>labels</th>"
            "<th>flagged features</th><th>prediction mix</th><th>most missing</th>"
            "<th>live</th><th>estimated</th></tr>"
        )
        for row in reversed(window_rows(windows)):
            parts.append("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>")
        parts.append("</table>")
        newest = windows[-1]
        if newest.stats.get("drift"):
            parts.append(f"<h2>Drift of the newest window ({_day(newest.start)} UTC)</h2>")
            parts.append(report_html(DriftReport.from_dict(newest.stats["drift"])))
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(
    name: str, path: str | Path, *, limit: int = 200, client: Client | None = None
) -> Path:
    """Write the monitor's HTML report to ``path`` (the newest ``limit`` windows)."""
    from loopml.monitoring.monitors import _client, check_name

    c = _client(client)
    store = c.metadata.monitors
    record = store.get(check_name(name))
    windows = list(reversed(store.windows(name, limit=limit, newest_first=True)))
    alerts = store.alerts(name, limit=200)
    target = Path(path)
    target.write_text(page(record, windows, alerts), encoding="utf-8")
    return target
