"""loopml: from a notebook to a versioned, tracked, cached pipeline, and around the loop.

Importing loopml is cheap: names are loaded on first use (PEP 562), so ``import loopml``
pulls in neither SQLAlchemy nor pandas.

Example:
    >>> from loopml import step, pipeline
    >>> @step
    ... def add(a: int, b: int = 1) -> int:
    ...     return a + b
    >>> add(1)
    2
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "step": "loopml.pipelines.step",
    "pipeline": "loopml.pipelines.pipeline",
    "Step": "loopml.pipelines.step",
    "Pipeline": "loopml.pipelines.pipeline",
    "start_run": "loopml.tracking",
    "log_metric": "loopml.tracking",
    "log_metrics": "loopml.tracking",
    "log_param": "loopml.tracking",
    "log_params": "loopml.tracking",
    "set_tag": "loopml.tracking",
    "log_artifact": "loopml.tracking",
    "active_run": "loopml.tracking",
    "runs": "loopml.tracking",
    "load": "loopml.registry.versions",
    "register": "loopml.registry.versions",
    "Client": "loopml.tracking.client",
    "Run": "loopml.tracking.run",
    "register_materializer": "loopml.artifacts.materializers",
    "LoopmlError": "loopml.errors",
    "add_dataset": "loopml.data.datasets",
    "dataset": "loopml.data.datasets",
    "profile": "loopml.data.profile",
    "drift": "loopml.data.drift",
    "validate": "loopml.data.validate",
    "suite": "loopml.evaluation.suites",
    "create_suite": "loopml.evaluation.suites",
    "predictions": "loopml.serving.logbook",
}

__all__ = [
    "Client",
    "LoopmlError",
    "Pipeline",
    "Run",
    "Step",
    "__version__",
    "active_run",
    "add_dataset",
    "create_suite",
    "dataset",
    "drift",
    "load",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "pipeline",
    "predictions",
    "profile",
    "register",
    "register_materializer",
    "runs",
    "set_tag",
    "start_run",
    "step",
    "suite",
    "validate",
]

if TYPE_CHECKING:
    from loopml.artifacts.materializers import register_materializer
    from loopml.data.datasets import add_dataset, dataset
    from loopml.data.drift import drift
    from loopml.data.profile import profile
    from loopml.data.validate import validate
    from loopml.errors import LoopmlError
    from loopml.evaluation.suites import create_suite, suite
    from loopml.pipelines.pipeline import Pipeline, pipeline
    from loopml.pipelines.step import Step, step
    from loopml.registry.versions import load, register
    from loopml.serving.logbook import predictions
    from loopml.tracking import (
        active_run,
        log_artifact,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        runs,
        set_tag,
        start_run,
    )
    from loopml.tracking.client import Client
    from loopml.tracking.run import Run


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
