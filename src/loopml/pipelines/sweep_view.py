"""How a :class:`~loopml.pipelines.sweep.Sweep` shows itself: plain data, a DataFrame, HTML.

Kept apart from ``sweep.py`` (which runs trials) because it only reads a finished sweep.
Every user value (parameter values, run names, errors) is escaped in the HTML.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.pipelines.sweep import Sweep, Trial


def param_keys(sweep: Sweep) -> list[str]:
    """The parameter names across the trials, in first-seen order."""
    keys: dict[str, None] = {}
    for trial in sweep.trials:
        keys.update(dict.fromkeys(trial.params))
    return list(keys)


def trial_dict(trial: Trial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "params": trial.params,
        "status": trial.status,
        "run_id": trial.run_id,
        "run": trial.run,
        "value": trial.value,
        "duration_s": trial.duration_s,
        "started_at": trial.started_at,
        "ended_at": trial.ended_at,
        "error": trial.error,
    }


def sweep_dict(sweep: Sweep) -> dict[str, Any]:
    best = sweep.best
    return {
        "id": sweep.id,
        "pipeline": sweep.pipeline,
        "strategy": sweep.strategy,
        "metric": sweep.metric,
        "goal": sweep.goal,
        "seed": sweep.seed,
        "counts": sweep.counts(),
        "best": trial_dict(best) if best is not None else None,
        "trials": [trial_dict(t) for t in sweep.trials],
    }


def sweep_frame(sweep: Sweep) -> Any:
    import pandas as pd

    rows = []
    for t in sweep.trials:
        row: dict[str, Any] = {
            "trial": t.number,
            "status": t.status,
            "run": t.run,
            "run_id": t.run_id,
            sweep.metric or "value": t.value,
            "duration_s": t.duration_s,
        }
        row.update({f"params.{k}": v for k, v in t.params.items()})
        row["error"] = t.error
        rows.append(row)
    return pd.DataFrame(rows)


def fmt_value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return str(value) if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def sweep_html(sweep: Sweep) -> str:
    e = html.escape
    keys = param_keys(sweep)
    best = sweep.best
    metric = sweep.metric or "metric"
    head = "".join(
        f"<th>{e(h)}</th>" for h in ["trial", "status", "run", *keys, metric, "duration"]
    )
    rows = []
    for t in sweep.trials:
        style = " style='background:#dafbe1;font-weight:bold'" if t is best else ""
        cells = [str(t.number), t.status, t.run or "–"]
        cells += [fmt_value(t.params.get(k)) for k in keys]
        cells += [fmt_value(t.value), "–" if t.duration_s is None else f"{t.duration_s:.2f} s"]
        title = f" title='{e(t.error, quote=True)}'" if t.error else ""
        rows.append(f"<tr{style}{title}>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(sweep.counts().items()))
    told = (
        f"best {e(metric)} ({e(sweep.goal)}) = {e(fmt_value(best.value))} in "
        f"trial {best.number} ({e(best.run or '')})"
        if best is not None
        else "no trial ranked" + ("" if sweep.metric else " (no metric given)")
    )
    return (
        f"<div><b>Sweep {e(sweep.id)}</b> of <code>{e(sweep.pipeline)}</code> · "
        f"{e(sweep.strategy)} · {e(counts or 'no trials')} · {told}"
        f"<table><tr>{head}</tr>{''.join(rows)}</table></div>"
    )
