"""Tracking: runs, metrics, params, tags and artifacts, from steps or from ``start_run()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.tracking.context import active_run, require_run

if TYPE_CHECKING:
    import pandas as pd

    from loopml.tracking.run import Run

__all__ = [
    "active_run",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "runs",
    "set_tag",
    "start_run",
]


def start_run(
    name: str = "adhoc", *, tags: dict[str, str] | None = None, run_id: str | None = None
) -> Run:
    """Start an ad-hoc tracked run; use it as ``with loopml.start_run("try") as run:``.

    With ``run_id``, log into a run another process started and owns (each worker of a
    distributed job): its metrics, params, tags and artifacts land in that run, none lost;
    the owner ends it, and writes after it ended are refused.

    Example:
        >>> import loopml
        >>> with loopml.start_run("quick-try") as run:      # doctest: +SKIP
        ...     run.log_params({"alpha": 0.5})
        ...     loopml.log_metric("auc", 0.91)
    """
    from loopml.tracking.client import default_client

    return default_client().start_run(name, tags=tags, run_id=run_id)


def log_metric(
    name: str, value: float, *, step: int | None = None, timestamp: float | None = None
) -> None:
    """Log a metric point to the active run (a series when called with increasing ``step``)."""
    require_run().log_metric(name, value, step=step, timestamp=timestamp)


def log_metrics(
    metrics: dict[str, float], *, step: int | None = None, timestamp: float | None = None
) -> None:
    """Log several metrics at one step to the active run."""
    require_run().log_metrics(metrics, step=step, timestamp=timestamp)


def log_param(name: str, value: Any) -> None:
    """Record one parameter on the active run."""
    require_run().log_param(name, value)


def log_params(params: dict[str, Any]) -> None:
    """Record parameters on the active run."""
    require_run().log_params(params)


def set_tag(name: str, value: Any) -> None:
    """Set a tag on the active run."""
    require_run().set_tag(name, value)


def log_artifact(value: Any, name: str) -> str:
    """Store a value, a file or a folder as an artifact of the active run; returns its digest."""
    return require_run().log_artifact(value, name)


def runs(filter: str | None = None, sort: str | None = None, *, limit: int = 100) -> pd.DataFrame:
    """Runs of the current project as a pandas DataFrame, e.g. ``runs("metrics.auc > 0.9")``."""
    from loopml.tracking.client import default_client

    return default_client().runs(filter, sort, limit=limit)
