"""Where steps run. One interface (``Executor.submit``); ``LocalExecutor`` is the first implementation."""

from __future__ import annotations

from loopml.execution.base import Executor, StepResult
from loopml.execution.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "StepResult"]
