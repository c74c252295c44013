"""The executor interface: one method, ``submit(task) -> Future``.

The runner (``runner.py``) decides *what* runs (order, cache, tracking); an executor only
decides *where*. A task is a zero-argument callable returning a :class:`StepResult`.
The local executor runs tasks on threads; a Ray executor will ship the same callable
(steps pickle by value) to cluster workers, which load inputs from the store by digest.
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
