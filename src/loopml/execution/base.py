"""The executor interface: one method, ``submit(task) -> Future``.

The runner (``runner.py``) decides *what* runs (order, cache, tracking); an executor only
decides *where*. A task is a ``StepTask`` (``task.py``): callable with no arguments,
returning a :class:`StepResult`, and picklable to plain data. The local executor runs
tasks on threads with values handed over in memory; an executor for other processes or a
cluster (Ray) ships the pickled task, and the worker opens the store from the task's
settings, loads inputs by digest and stores outputs itself.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Executor(Protocol):
    """Runs step tasks somewhere and hands back futures."""

    name: str
    #: True when tasks run in this process, so outputs can be handed over in memory.
    shares_memory: bool

    def submit(self, task: Callable[[], T]) -> Future[T]: ...

    def shutdown(self) -> None: ...


@dataclass(slots=True)
class StepResult:
    """What one step execution produced, measured where it ran."""

    outputs: dict[str, Any] = field(default_factory=dict)  # output ref -> ArtifactRecord
    values: dict[str, Any] = field(
        default_factory=dict
    )  # output ref -> value (in-memory executors only)
    started_at: float = 0.0  # epoch seconds when the step began running (not when queued)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_mem_bytes: int = 0
    stdout: str = ""
    stderr: str = ""
    error: BaseException | None = None
    error_text: str | None = None
    traceback: str | None = None
    logged: dict[str, Any] = field(
        default_factory=dict
    )  # metrics/params/tags, replayed on a cache hit
    host: str = ""  # where it ran (out-of-process executors: the node and worker)
    env: dict[str, Any] | None = None  # the environment measured there (out-of-process only)
