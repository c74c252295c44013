"""One line of text per evaluated window: what ``loopml monitor show`` and the web UI list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from loopml.store.monitors import WindowRecord


def _num(value: Any, digits: int = 3) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{number:.{digits}g}" if number == number else "–"


def drifted(stats: dict[str, Any]) -> list[str]:
    """The features the drift verdict (``loopml.data.drift``'s thresholds) calls drifted."""
    return [
        c["column"] for c in (stats.get("drift") or {}).get("columns") or [] if c.get("drifted")
    ]


def flagged(stats: dict[str, Any]) -> list[str]:
    """The features the monitor's rules flag in a window (worst first, by PSI)."""
    found = stats.get("flagged")
    if found is None:  # a window evaluated without rules
        return drifted(stats)
    psi = {
        c["column"]: float((c.get("statistics") or {}).get("psi") or 0)
        for c in (stats.get("drift") or {}).get("columns") or []
    }
    return sorted(found, key=lambda k: (-psi.get(k, 0.0), k))


def mix(stats: dict[str, Any]) -> str:
    prediction = stats.get("prediction") or {}
    shares = prediction.get("shares")
    if shares:
        return " ".join(f"{k}:{float(v):.0%}" for k, v in list(shares.items())[:4])
    quantiles = prediction.get("quantiles") or {}
    return f"median {_num(quantiles.get('0.5'))}" if quantiles else "–"


def missing(stats: dict[str, Any]) -> str:
    """The feature with the most missing values, if any is missing."""
    worst = max(
        ((k, float(v.get("missing") or 0)) for k, v in (stats.get("quality") or {}).items()),
        key=lambda kv: kv[1],
        default=None,
    )
    return "–" if worst is None or worst[1] == 0 else f"{worst[0]} {worst[1]:.0%}"


def metrics(stats: dict[str, Any], kind: str) -> str:
    performance = stats.get("performance") or {}
    found = (performance.get(kind) or {}).get("metrics") or {}
    parts = []
    for name in ("roc_auc", "accuracy", "rmse", "mae"):
        if name not in found:
            continue
        value = found[name]
        if isinstance(value, dict):  # estimated: value with its interval
            parts.append(
                f"{name} {_num(value.get('value'))} [{_num(value.get('low'))}, "
                f"{_num(value.get('high'))}]"
            )
        else:
            parts.append(f"{name} {_num(value)}")
        if len(parts) == 2:
            break
    return ", ".join(parts) or "–"


def window_label(start: float, end: float) -> str:
    a = datetime.fromtimestamp(start, UTC)
    b = datetime.fromtimestamp(end, UTC)
    same_day = a.date() == b.date()
    return (
        f"{a:%Y-%m-%d %H:%M} – {b:%H:%M}" if same_day else f"{a:%Y-%m-%d %H:%M} – {b:%m-%d %H:%M}"
    )


def window_rows(windows: Sequence[WindowRecord]) -> list[tuple[str, ...]]:
    """(window, rows, labels, flagged features, prediction mix, missing, live, estimated)."""
    out: list[tuple[str, ...]] = []
    for w in windows:
        found = flagged(w.stats)
        out.append(
            (
                window_label(w.start, w.end),
                f"{w.rows:,}",
                f"{w.labels:,}",
                ", ".join(found[:5]) + (f" +{len(found) - 5}" if len(found) > 5 else "") or "–",
                mix(w.stats),
                missing(w.stats),
                metrics(w.stats, "live"),
                metrics(w.stats, "estimated"),
            )
        )
    return out
