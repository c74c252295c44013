"""Frozen records read from the store. SQLAlchemy rows never leave ``store/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as stored: attributes plus its params, latest metrics and tags."""

    id: str
    pipeline: str
    number: int
    name: str
    kind: str
    status: str
    started_at: float
    ended_at: float | None
    duration_s: float | None
    heartbeat_at: float
    host: str
    pid: int
    executor: str
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_diff_digest: str | None = None
    python_version: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    cpu_s: float | None = None
    cost: float | None = None
    error: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lease_s: float = 0.0
    owner: str | None = None

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def label(self) -> str:
        """``pipeline#number``, the human name of a run."""
        return f"{self.pipeline}#{self.number}"


@dataclass(frozen=True, slots=True)
class NewRun:
    """What creating a run returns: its id and number, without reading the row back."""

    id: str
    pipeline: str
    number: int
    name: str

    @property
    def label(self) -> str:
        return f"{self.pipeline}#{self.number}"


@dataclass(frozen=True, slots=True)
class StepRunRecord:
    """One step's execution inside a run."""

    id: str
    run_id: str
    name: str
    position: int
    status: str
    cached: bool
    cache_key: str | None
    started_at: float | None
    ended_at: float | None
    wall_s: float | None
    cpu_s: float | None
    peak_mem_bytes: int | None
    cpus: float | None
    gpus: float | None
    stdout: str | None
    stderr: str | None
    error: str | None
    traceback: str | None
    reason: dict[str, Any] | None = None  # why it ran, or where its outputs came from
    host: str | None = None  # where it ran (host; node and worker pid on a cluster)
    attempts: int | None = None  # how many times it was started
    env_digest: str | None = None  # the environment measured where it ran

    @property
    def why(self) -> str:
        """The reason as one line, e.g. ``"parameter alpha: 0.5 → 0.7"``."""
        from loopml.store.reasons import describe

        return describe(self.reason)


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """An artifact row: the digest and how to load it."""

    digest: str
    materializer: str
    type_name: str
    size: int
    metadata: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class ArtifactLink:
    """A run or step touching an artifact: produced it (output), read it (input) or logged it."""

    run_id: str
    step_run_id: str | None
    step: str | None
    digest: str
    direction: str
    name: str


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One point of a metric series."""

    step: int
    value: float
    timestamp: float
