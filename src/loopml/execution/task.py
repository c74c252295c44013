"""A step task: everything needed to run one step, as a value an executor can ship.

``StepTask`` pickles to plain data (the step by reference or by value, parameters, input
digests, the run's ids and the store settings), so an executor can run it in another
process or on another machine: there it opens the store from ``settings``, loads inputs
by digest and logs through a handle attached to the run. In the calling process the
local executor also hands over the in-memory values, client and live run, which are
never pickled.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from loopml.config import Settings
from loopml.errors import LoopmlError, MaterializerError
from loopml.execution.base import StepResult
from loopml.execution.resources import Measurement, measure
from loopml.pipelines.dag import Node
from loopml.store import ArtifactRecord, StepWrites
from loopml.tracking.client import Client
from loopml.tracking.context import use_run
from loopml.tracking.run import Run

_IN_PROCESS = ("values", "client", "run")


@dataclass
class StepTask:
    """One step to run: call it (``task()``) wherever the executor decides."""

    node: Node
    params: dict[str, Any]  # plain (JSON-able) step parameters
    sources: dict[str, tuple[str, str]]  # input parameter -> (output ref, digest)
    run_id: str
    step_run_id: str
    settings: Settings
    where: str | None = None  # set by a cluster executor on its worker: node and process
    started_at: float | None = None  # when an in-process executor began running it
    values: dict[str, Any] = field(default_factory=dict, repr=False)  # in-process only
    client: Client | None = field(default=None, repr=False)  # in-process only
    run: Run | None = field(default=None, repr=False)  # in-process only

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _IN_PROCESS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.values, self.client, self.run = {}, None, None

    def __call__(self) -> StepResult:
        return execute_step(self)


def execute_step(task: StepTask) -> StepResult:
    """Run one step where the executor put it: load inputs, call, measure, store outputs.

    Never raises: a failure is returned in the result so the runner records it.
    """
    result = StepResult(started_at=time.time())
    task.started_at = result.started_at  # the runner's copy, in process: its timeout starts
    measurement = Measurement()
    node, step_run_id, sources = task.node, task.step_run_id, task.sources
    remote = task.client is None
    client = task.client or _worker_client(task.settings)
    run = task.run or Run.attach(client, task.run_id)
    values = task.values
    if remote:  # named in the store now, so a worker that dies has still said where it was
        result.host = task.where or f"{socket.gethostname()} pid {os.getpid()}"
        _note_host(client, task, result.host)
    try:
        kwargs = dict(task.params)
        for param, (ref, digest) in sources.items():
            kwargs[param] = values[ref] if ref in values else client.load_artifact(digest)
        # The step's interval is its function's: started_at + wall_s is when it returned,
        # whatever opening the store or loading inputs took before (on a busy worker, seconds).
        result.started_at = time.time()
        with use_run(run, step_run_id), measure() as measurement:
            value = node.step.fn(**kwargs)
        outputs = _split(node, value)
        for ref, item in outputs.items():
            try:
                record: ArtifactRecord = client.store_value(item)
            except MaterializerError as exc:
                raise MaterializerError(f"Step {node.name!r} output {ref!r}: {exc}") from None
            result.outputs[ref] = record
            if not remote:
                result.values[ref] = item
    except BaseException as exc:  # recorded on the step; the runner decides what follows
        result.error = exc
        result.error_text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        tb = exc.__traceback__
        # Drop loopml's own frames so the traceback starts in the user's step.
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        result.traceback = "".join(traceback.format_exception(type(exc), exc, tb))
    result.wall_s, result.cpu_s = measurement.wall_s, measurement.cpu_s
    result.peak_mem_bytes = measurement.peak_mem_bytes
    result.stdout, result.stderr = measurement.stdout, measurement.stderr
    result.logged = run.take_step_log(step_run_id)
    if remote:  # this process's writes must be stored before the runner records the step
        run.flush()
        result.env = worker_environment()
    return result


_worker_clients: dict[tuple[str, str], Client] = {}


def _worker_client(settings: Settings) -> Client:
    """One open client per store in a worker process, reused by every step it runs (opening
    a store checks its schema: once, not per step)."""
    key = (settings.store_uri, settings.artifacts_uri)
    client = _worker_clients.get(key)
    if client is None:
        client = _worker_clients[key] = Client(settings).open()
    return client


def _note_host(client: Client, task: StepTask, host: str) -> None:
    """Where and when the step began on this worker (the runner's timeout counts from then)."""
    writes = StepWrites()
    writes.update(task.step_run_id, host=host, started_at=task.started_at)
    try:
        client.metadata.steps.apply(task.run_id, writes)
    except LoopmlError:  # the run ended meanwhile: the step's result is refused later anyway
        pass


_environment: list[Any] = [-1, None]  # (len(sys.modules) when read, the environment)


def worker_environment() -> dict[str, Any]:
    """Python, platform, host and the packages this worker process imported (read again
    only when it has imported more since)."""
    import platform
    import sys

    from loopml.tracking.environment import packages

    if _environment[0] != len(sys.modules):
        _environment[1] = {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "host": socket.gethostname(),
            "packages": packages(),
        }
        _environment[0] = len(sys.modules)
    return dict(_environment[1])


def _split(node: Node, value: Any) -> dict[str, Any]:
    names = node.output_names
    if names is None:
        return {node.name: value}
    if isinstance(value, dict) and set(value) == set(names):
        return {f"{node.name}.{n}": value[n] for n in names}
    if isinstance(value, tuple | list) and len(value) == len(names):
        return {f"{node.name}.{n}": v for n, v in zip(names, value, strict=True)}
    raise LoopmlError(
        f"Step {node.name!r} declares outputs {list(names)} but returned {type(value).__name__}"
        f"{f' of length {len(value)}' if isinstance(value, tuple | list) else ''}; return a tuple of "
        f"{len(names)} values in that order, or a dict with those keys."
    )
