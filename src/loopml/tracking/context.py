"""The one piece of implicit state in loopml: the active run of the current context.

``loopml.log_metric`` and friends write to it. A pipeline sets it for each step (the
executor copies the context into worker threads); ``start_run()`` sets it for its block.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from loopml.errors import LoopmlError

if TYPE_CHECKING:
    from loopml.tracking.run import Run

_active: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "loopml_active_run", default=None
)
_step_run: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "loopml_step_run", default=None
)


def active_step_run() -> str | None:
    """The id of the step run executing in this context, if any (for lineage of logged artifacts)."""
    return _step_run.get()


def active_run() -> Run | None:
    """The run that module-level logging functions write to, or None."""
    return _active.get()


def require_run() -> Run:
    run = _active.get()
    if run is None:
        raise LoopmlError(
            "No active run: log inside a @step of a running pipeline, or open one with "
            "`with loopml.start_run('name') as run:`."
        )
    return run


@contextmanager
def use_run(run: Run | None, step_run_id: str | None = None) -> Iterator[None]:
    token = _active.set(run)
    step_token = _step_run.set(step_run_id)
    try:
        yield
    finally:
        _step_run.reset(step_token)
        _active.reset(token)
