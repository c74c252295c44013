"""Running a pipeline's DAG: cache look-ups, scheduling, tracking, failure handling.

The runner lives in the calling process and owns every metadata write about the run;
executors only run step tasks (see ``base.py``). For each ready step it computes the
cache key from the step's code fingerprint, its constant parameters and the digests of
its inputs. A hit (whose outputs are still intact) records the step as cached without
loading anything; a miss submits a task. Either way the step records *why*: the run it
was reused from, or what changed since the last run of that step (``store/reasons.py``).
A failed step stops its downstream steps (``skipped``), lets running branches finish,
and fails the run with the step's own traceback.

Step records go to the store in batches (``StepWrites``): a chain of cached steps is one
transaction.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import time
import typing
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError, LoopmlError, StepFailedError
from loopml.execution.base import Executor, StepResult
from loopml.execution.task import StepTask
from loopml.pipelines.dag import Dag, Node
from loopml.pipelines.fingerprint import (
    cache_key,
    canonical_json,
    canonical_param,
    code_parts,
    fingerprint_of,
)
from loopml.store import RunStatus, StepStatus, StepWrites
from loopml.store.reasons import diff_basis
from loopml.store.runs import environment_row
from loopml.tracking.client import Client, default_client
from loopml.tracking.cost import Usage
from loopml.tracking.run import Run, status_for

if TYPE_CHECKING:
    from loopml.pipelines.pipeline import Pipeline

Progress = Callable[..., None]


def make_executor(client: Client, workers: int | None, on: str | None = None) -> Executor:
    """The executor ``on`` names, else ``[run] executor`` (a plugin), sized by ``workers``.

    ``on`` is an executor's name (``"local"``, ``"ray"``) or a Ray address
    (``"ray://HOST:PORT"`` for Ray Client, ``"ray:HOST:PORT"`` or ``"ray:auto"`` to join the
    cluster this machine belongs to); an executor that connects somewhere does it here, so an
    unreachable cluster fails before the run is recorded.
    """
    from loopml import plugins

    name, address = split_target(on or client.settings.executor)
    cls = plugins.load("executor", name)
    try:  # an executor that does not size itself need not take ``workers``
        params = {p.name: p for p in inspect.signature(cls).parameters.values()}
    except (TypeError, ValueError):
        params = {}
    kwargs: dict[str, Any] = {}
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if "workers" in params or takes_all:
        kwargs["workers"] = workers or client.settings.workers
    if "settings" in params or takes_all:
        kwargs["settings"] = client.settings
    if address is not None:
        if "address" not in params and not takes_all:
            raise InvalidParameterError(
                f"Executor {name!r} takes no address, got {on!r}; use --on {name}."
            )
        kwargs["address"] = address
    return cls(**kwargs)  # type: ignore[no-any-return]


def split_target(target: str) -> tuple[str, str | None]:
    """``"ray://h:p"`` → ``("ray", "ray://h:p")``; ``"ray:auto"`` → ``("ray", "auto")``;
    ``"local"`` → ``("local", None)``."""
    if not isinstance(target, str) or not target.strip():
        raise InvalidParameterError(
            f"Executor {target!r}: expected 'local', 'ray', 'ray://HOST:PORT' or 'ray:HOST:PORT'."
        )
    target = target.strip()
    if "://" in target:
        return target.partition("://")[0], target
    name, sep, address = target.partition(":")
    return name, (address if sep else None)


def run_pipeline(
    pipeline: Pipeline,
    dag: Dag,
    params: dict[str, Any],
    *,
    cache: bool = True,
    workers: int | None = None,
    client: Client | None = None,
    executor: Executor | str | None = None,
    progress: Progress | None = None,
    tags: dict[str, Any] | None = None,
    on_start: Callable[[Run], None] | None = None,
) -> Run:
    """Execute ``dag`` as a tracked run of ``pipeline`` and return the finished run.

    ``tags`` are set on the run as it starts (a scheduled run carries its schedule's);
    ``on_start`` is called with the live run before the first step.
    """
    client = (client or default_client()).open()
    own_executor = executor is None or isinstance(executor, str)
    if executor is None or isinstance(executor, str):
        executor = make_executor(client, workers, on=executor)
    run = Run.start(client, pipeline.name, executor=executor.name)
    runner = _Runner(
        client, run, dag, executor, cache=cache, progress=progress or (lambda *a, **k: None)
    )
    try:
        run.log_params({k: _param_text(v) for k, v in params.items()})
        for key, value in (tags or {}).items():
            run.set_tag(key, value)
        # Stored now, not at the next periodic flush: a run killed in its first second
        # (its scheduler died) still says which schedule and parameters it ran with.
        run.flush()
        record = getattr(executor, "on_run_start", None)
        if record is not None:  # what the executor shipped and where (a cluster's address)
            record(run)
        if on_start is not None:
            on_start(run)
        runner.execute()
    except StepFailedError as exc:
        run.end(RunStatus.FAILED, error=str(exc), **runner.usage())
        raise
    except BaseException as exc:
        status, error = status_for(exc)
        runner.abandon(status)
        run.end(status, error=error, **runner.usage())
        raise
    finally:
        if own_executor:
            executor.shutdown()
    run.end(RunStatus.SUCCEEDED, **runner.usage())
    return run


def _param_text(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value if isinstance(value, bool | int | float | str) or value is None else repr(value)


class _Runner:
    def __init__(
        self,
        client: Client,
        run: Run,
        dag: Dag,
        executor: Executor,
        *,
        cache: bool,
        progress: Progress,
    ) -> None:
        self.client = client
        self.store = client.metadata
        self.run = run
        self.dag = dag
        self.executor = executor
        self.use_cache = cache
        self.progress = progress
        self.step_ids = {n.name: uuid.uuid4().hex for n in dag}
        self.digests: dict[str, str] = {}  # output ref -> digest
        self.values: dict[str, Any] = {}  # output ref -> value held in memory
        self.stored: dict[str, dict[str, str]] = {}  # node -> parameter -> digest of its value
        self.labels: dict[str, dict[str, str]] = {}  # node -> parameter -> "turbines@3"
        self.status: dict[str, str] = {}
        self.usages: list[Usage] = []
        self.peak = 0
        self.started = time.monotonic()
        self.writes = StepWrites()
        self.pipeline = run.pipeline
        self.label = f"{run.pipeline}#{run.number}"
        self.exclude = _store_folders(client)
        self.attempts: dict[str, int] = {}  # step -> attempts started
        self.failures: dict[str, list[dict[str, Any]]] = {}  # step -> its failed attempts
        self.running: dict[Future[StepResult], _Running] = {}  # attempts sent, not finished

    def usage(self) -> dict[str, Any]:
        """What ``Run.end`` needs for the cost: each step's resources and the process peak."""
        return {"usages": self.usages, "peak_bytes": self.peak}

    # -- set-up ---------------------------------------------------------------------------

    def _constants(self, node: Node) -> tuple[str, dict[str, str]]:
        """Canonical JSON of the node's plain parameters, and digests of the ones JSON cannot hold."""
        plain: dict[str, Any] = {}
        stored: dict[str, str] = {}
        hints = _hints(node)
        for name, value in node.constants:
            stored_as = getattr(value, "__loopml_artifact__", None)
            if stored_as is not None:  # already in the store (a dataset version): its digest
                stored[name], self.labels.setdefault(node.name, {})[name] = stored_as(self.client)
                continue
            # Canonical once: a folder parameter's files are read (or stat'ed) once per run.
            canonical = canonical_param(value, hints.get(name), exclude=self.exclude, name=name)
            try:
                json.dumps(canonical, allow_nan=True)
                plain[name] = canonical
            except (TypeError, ValueError):
                record = self.client.store_value(value)
                stored[name] = record.digest
                self.values[f"{node.name}:{name}"] = value
        return canonical_json(plain), stored

    # -- the loop -------------------------------------------------------------------------

    def execute(self) -> None:
        self.store.steps.insert_pending(
            self.run.id,
            [(self.step_ids[n.name], n.name, n.step.spec.cpus, n.step.spec.gpus) for n in self.dag],
        )
        parts = {n.name: code_parts(n.step) for n in self.dag}
        pending = list(self.dag)
        running = self.running
        failed: StepResult | None = None
        failed_node: Node | None = None
        while pending or running:
            ready: list[tuple[Node, str, dict[str, Any], StepTask]] = []
            for node in list(pending):
                if any(self.status.get(up) != StepStatus.SUCCEEDED for up in node.upstream):
                    if any(
                        self.status.get(up) in (StepStatus.FAILED, StepStatus.SKIPPED)
                        for up in node.upstream
                    ):
                        pending.remove(node)
                        self._skip(node)
                    continue
                if failed is not None:
                    pending.remove(node)
                    self._skip(node)
                    continue
                pending.remove(node)
                params, stored = self._constants(node)
                self.stored[node.name] = stored
                inputs = {param: self.digests[ref.ref] for param, ref in node.inputs} | stored
                spec = node.step.spec
                step_id = f"{spec.module}.{spec.qualname}"
                key = cache_key(step_id, fingerprint_of(parts[node.name]), params, inputs)
                basis = {
                    "step": step_id,
                    "code": parts[node.name],
                    "params": json.loads(params),
                    "inputs": inputs,
                }
                if node.name in self.labels:  # what people call the stored inputs
                    basis["labels"] = self.labels[node.name]
                if self.use_cache and spec.cache:
                    entry = self.store.steps.cache_hit(key)
                    if entry is not None and self._try_cache(node, key, inputs, entry):
                        continue
                    reason = self._reason(node, basis, entry)
                elif not self.use_cache:
                    reason = {"kind": "no-cache", "why": "cache disabled for this run (--no-cache)"}
                else:
                    reason = {
                        "kind": "no-cache",
                        "why": "cache disabled for this step (cache=False)",
                    }
                self._mark_running(node, key, reason, basis)
                ready.append((node, key, reason, self._task(node, stored)))
            # One store write marks every ready step running; then they are all sent at once.
            self.flush_writes()
            for node, key, reason, task in ready:
                self.progress("started", node.name, reason=reason)
                self._submit(running, node, key, reason, task)
            if not running:
                continue
            # A timeout keeps the main thread responsive to Ctrl-C while steps run.
            done, _ = wait(
                list(running), timeout=self._wait_s(running), return_when=FIRST_COMPLETED
            )
            finished = [(f, self._result_of(f, running[f][0])) for f in done]
            finished += self._expired(running, done)
            for future, result in sorted(finished, key=lambda fr: fr[1].started_at):
                node, key, reason, task, _ = running.pop(future)
                if self._retry(running, node, key, reason, task, result, stopping=failed):
                    continue
                inputs = {param: self.digests[ref.ref] for param, ref in node.inputs}
                self._record(node, key, result, inputs | self.stored[node.name], reason)
                if isinstance(result.error, SystemExit | KeyboardInterrupt):
                    raise result.error  # the step asked to stop the whole program
                if _failed(result) and failed is None:
                    failed, failed_node = result, node
            if failed is not None:  # steps still queued in the executor never start
                for future in [f for f in running if f.cancel()]:
                    node, _, _, _, _ = running.pop(future)
                    self._skip(node)
        self.flush_writes()
        if failed is not None and failed_node is not None:
            raise StepFailedError(
                failed_node.name, self.run.id, failed.error_text or "error", failed.traceback or ""
            ) from failed.error

    # -- attempts: retries, timeouts, lost workers ------------------------------------------

    def _submit(
        self,
        running: dict[Future[StepResult], _Running],
        node: Node,
        key: str,
        reason: dict[str, Any],
        task: StepTask,
    ) -> None:
        self.attempts[node.name] = self.attempts.get(node.name, 0) + 1
        task.started_at = None  # set again where this attempt begins
        timeout = node.step.spec.timeout
        deadline = time.monotonic() + timeout if timeout else None
        running[self.executor.submit(task)] = (node, key, reason, task, deadline)

    @staticmethod
    def _wait_s(running: dict[Future[StepResult], _Running]) -> float:
        deadlines = [entry[4] for entry in running.values() if entry[4] is not None]
        if not deadlines:
            return 0.5
        return max(0.0, min(0.5, min(deadlines) - time.monotonic()))

    def _result_of(self, future: Future[StepResult], node: Node) -> StepResult:
        """The future's result; an executor that lost the step (its worker or node died, the
        connection broke) becomes a failed result naming where the step was and why."""
        try:
            return future.result()
        except BaseException as exc:  # from the executor, not the step: describe it
            where = self.store.steps.host_of(self.step_ids[node.name])
            cause = " ".join(str(exc).split())[:2000] or type(exc).__name__
            return StepResult(
                started_at=time.time(),
                host=where or "",
                error_text=f"{type(exc).__name__}: step {node.name!r} was lost"
                f"{f' on {where}' if where else ''}: {cause}",
            )

    def _expired(
        self, running: dict[Future[StepResult], _Running], done: set[Future[StepResult]]
    ) -> list[tuple[Future[StepResult], StepResult]]:
        """Attempts past their step's ``timeout``, counted from when the attempt began running
        (not while it waited for a worker): stopped where the executor can, and failed."""
        now = time.monotonic()
        expired = []
        for future, (node, key, reason, task, deadline) in list(running.items()):
            if future in done or deadline is None or now < deadline:
                continue
            timeout = node.step.spec.timeout or 0.0
            where, began = self._began(node, task)
            if began is None:  # still queued: look again in a second
                running[future] = (node, key, reason, task, now + min(timeout, 1.0))
                continue
            left = began + timeout - time.time()
            if left > 0:
                running[future] = (node, key, reason, task, now + left)
                continue
            cancel = getattr(self.executor, "cancel", None)
            if cancel is not None:
                cancel(future)
            else:
                future.cancel()
            expired.append(
                (
                    future,
                    StepResult(
                        started_at=began,
                        wall_s=timeout,
                        host=where or "",
                        error_text=f"TimeoutError: step {node.name!r} ran past its timeout of "
                        f"{fmt_seconds(timeout)}{f' on {where}' if where else ''} and was stopped.",
                    ),
                )
            )
        return expired

    def _began(self, node: Node, task: StepTask) -> tuple[str | None, float | None]:
        """Where and when the attempt began running (epoch seconds), or None if not yet."""
        if self.executor.shares_memory:
            return None, task.started_at
        where, began = self.store.steps.placement(self.step_ids[node.name])
        return where, (began if where is not None else None)

    def _retry(
        self,
        running: dict[Future[StepResult], _Running],
        node: Node,
        key: str,
        reason: dict[str, Any],
        task: StepTask,
        result: StepResult,
        *,
        stopping: StepResult | None,
    ) -> bool:
        """Start the step again when it failed and ``@step(retries=N)`` allows another try."""
        if not _failed(result) or isinstance(result.error, SystemExit | KeyboardInterrupt):
            return False
        if stopping is not None or self.attempts[node.name] > node.step.spec.retries:
            return False
        self.failures.setdefault(node.name, []).append(
            {"attempt": self.attempts[node.name], "error": result.error_text, "host": result.host}
        )
        self.progress("retrying", node.name, error=result.error_text, reason=reason)
        self.writes.update(self.step_ids[node.name], host=None)  # the next attempt says anew
        self.flush_writes()
        self._submit(running, node, key, reason, task)
        return True

    def _reason(
        self, node: Node, basis: dict[str, Any], entry: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Why this step must run: what changed since its last run, or why the cache failed."""
        if entry is not None:
            source = entry.get("source", {})
            return {
                "kind": "retry",
                "why": f"the outputs cached by {source.get('run', 'an earlier run')} are missing "
                "or damaged; running again",
            }
        previous = self.store.steps.previous_basis(self.pipeline, node.name, self.run.id)
        if previous is None:
            return {"kind": "first"}
        old, pipeline, number, status = previous
        label = f"{pipeline}#{number}"
        changes = diff_basis(old, basis)
        if changes:
            return {"kind": "changed", "previous": label, "changes": changes}
        if status == StepStatus.FAILED:
            return {"kind": "retry", "why": f"the same step failed in {label}"}
        if status != StepStatus.SUCCEEDED:
            return {"kind": "retry", "why": f"the same step did not finish in {label} ({status})"}
        return {
            "kind": "retry",
            "why": f"nothing changed since {label}, but its cache entry is gone (runs delete, "
            "fsck --repair)",
        }

    def _task(self, node: Node, stored: dict[str, str]) -> StepTask:
        sources: dict[str, tuple[str, str]] = {
            param: (ref.ref, self.digests[ref.ref]) for param, ref in node.inputs
        }
        sources |= {name: (f"{node.name}:{name}", digest) for name, digest in stored.items()}
        task = StepTask(
            node=node,
            params={name: value for name, value in node.constants if name not in stored},
            sources=sources,
            run_id=self.run.id,
            step_run_id=self.step_ids[node.name],
            settings=self.client.settings,
        )
        if self.executor.shares_memory:  # hand over values, client and live run in memory
            task.values, task.client, task.run = self.values, self.client, self.run
        return task

    def _try_cache(
        self, node: Node, key: str, inputs: dict[str, str], entry: dict[str, Any]
    ) -> bool:
        outputs: dict[str, str] = entry.get("outputs", {})
        if sorted(outputs) != sorted(node.output_refs()):
            return False
        sizes: dict[str, int] = entry.get("sizes", {})
        # A damaged or missing blob is a miss: the step runs again and heals it.
        if not all(self.client.artifacts.is_intact(d, sizes.get(d, -1)) for d in outputs.values()):
            return False
        now = time.time()
        sid = self.step_ids[node.name]
        source = entry.get("source") or {}
        reason = {
            "kind": "cached",
            "run": source.get("run", "?"),
            "step": source.get("step", node.name),
        }
        self.writes.update(
            sid,
            status=StepStatus.SUCCEEDED,
            cached=True,
            cache_key=key,
            started_at=now,
            ended_at=now,
            wall_s=0.0,
            cpu_s=0.0,
            reason=reason,
        )
        self._links(node, inputs, outputs)
        logged = entry.get("logged", {})
        # Replay what the step logged when it really ran, so a cached run has the same metrics.
        self.run.log_params(logged.get("params", {}))
        for name, value in logged.get("tags", {}).items():
            self.run.set_tag(name, value)
        for name, step, value in logged.get("metrics", []):
            self.run.log_metric(name, value, step=step)
        if node.step.spec.register is not None:
            self._register(node, outputs)
        self.digests.update(outputs)
        self.status[node.name] = StepStatus.SUCCEEDED
        self.progress("cached", node.name, reason=reason)
        return True

    def _links(self, node: Node, inputs: dict[str, str], outputs: dict[str, str]) -> None:
        sid = self.step_ids[node.name]
        for param, digest in inputs.items():
            self.writes.link(sid, "input", param, digest)
        for ref, digest in outputs.items():
            self.writes.link(sid, "output", ref, digest)

    def flush_writes(self) -> None:
        if self.writes:
            self.store.steps.apply(self.run.id, self.writes.take())

    def _mark_running(
        self, node: Node, key: str, reason: dict[str, Any], basis: dict[str, Any]
    ) -> None:
        self.writes.update(
            self.step_ids[node.name],
            status=StepStatus.RUNNING,
            cache_key=key,
            started_at=time.time(),
            reason=reason,
        )
        self.writes.basis(key, basis)

    def _skip(self, node: Node) -> None:
        self.status[node.name] = StepStatus.SKIPPED
        self.writes.update(self.step_ids[node.name], status=StepStatus.SKIPPED)
        self.progress(StepStatus.SKIPPED, node.name)

    def _record(
        self,
        node: Node,
        key: str,
        result: StepResult,
        inputs: dict[str, str],
        reason: dict[str, Any],
    ) -> None:
        spec = node.step.spec
        ok = not _failed(result)
        status = StepStatus.SUCCEEDED if ok else StepStatus.FAILED
        placement: dict[str, Any] = {
            # An out-of-process step that never said where it was (stopped or lost before it
            # started) did not run here: no host rather than this machine's name.
            "host": result.host or (_HOST if self.executor.shares_memory else None),
            "attempts": self.attempts.get(node.name, 1),
        }
        if result.env is not None:
            env = environment_row(result.env)
            self.writes.environment(env)
            placement["env_digest"] = env.digest
        if node.name in self.failures:
            reason = {**reason, "failed_attempts": self.failures[node.name]}
        outputs = {ref: rec.digest for ref, rec in result.outputs.items()} if ok else {}
        sid = self.step_ids[node.name]
        self.writes.update(
            sid,
            status=status,
            cached=False,
            cache_key=key,
            started_at=result.started_at,
            ended_at=result.started_at + result.wall_s,
            wall_s=result.wall_s,
            cpu_s=result.cpu_s,
            peak_mem_bytes=result.peak_mem_bytes,
            stdout=result.stdout,
            stderr=result.stderr,
            error=result.error_text,
            traceback=result.traceback,
            reason=reason,
            **placement,
        )
        self._links(node, inputs, outputs)
        if ok and spec.register is not None:
            self._register(node, outputs)
        if ok:
            entry = {
                "outputs": outputs,
                "logged": result.logged,
                "source": {"run": self.label, "step": node.name},
            }
            self.writes.cache_entry(key, node.name, entry, sid)
        self.flush_writes()
        self.digests.update(outputs)
        self.values.update(result.values)
        self.status[node.name] = status
        self.usages.append(Usage(result.wall_s, spec.cpus, spec.gpus, spec.memory))
        self.peak = max(self.peak, result.peak_mem_bytes)
        self.progress(
            status, node.name, wall_s=result.wall_s, error=result.error_text, reason=reason
        )

    def _register(self, node: Node, outputs: dict[str, str]) -> None:
        """``@step(register=NAME)``: the output becomes the next version of the model NAME
        (the same artifact again is the same version), with the run's metrics so far."""
        from loopml import plugins

        self.flush_writes()
        self.run.flush()
        registrar = plugins.load("registrar", "default")
        for ref in outputs:
            registrar(node.step.spec.register, run=self.run.id, output=ref, client=self.client)

    def abandon(self, status: str) -> None:
        """After an interrupt or exit: unfinished steps become ``cancelled`` (or ``skipped``)."""
        final = StepStatus.CANCELLED if status == RunStatus.CANCELLED else StepStatus.SKIPPED
        cancel = getattr(self.executor, "cancel", None)
        for future in list(self.running):  # a cluster stops them too (the local ones can't be)
            if not future.cancel() and cancel is not None:
                try:
                    cancel(future)
                except Exception:  # the run ends cancelled whether or not the cluster answers
                    pass
        for node in self.dag:
            if self.status.get(node.name) is None:
                self.writes.update(self.step_ids[node.name], status=final)
        try:
            self.flush_writes()
        except LoopmlError:
            pass


#: A submitted attempt: its node, cache key, reason, task and deadline (monotonic seconds).
_Running = tuple[Node, str, dict[str, Any], StepTask, float | None]
_HOST = socket.gethostname()


def _failed(result: StepResult) -> bool:
    return result.error is not None or result.error_text is not None


def fmt_seconds(seconds: float) -> str:
    """``1800`` → ``"30m"``, ``90`` → ``"90s"``, ``7200`` → ``"2h"``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


_HINTS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _hints(node: Node) -> dict[str, Any]:
    fn = node.step.fn
    found = _HINTS.get(fn)
    if found is None:
        try:
            found = typing.get_type_hints(fn)
        except Exception:  # an annotation naming something undefined: raw annotations
            found = dict(getattr(fn, "__annotations__", {}))
        _HINTS[fn] = found
    return found


def _store_folders(client: Client) -> tuple[Path, ...]:
    """The store's own folders: never hashed as part of a parameter (see fingerprint.py)."""
    folders = []
    path = client.metadata.db.sqlite_path
    if path is not None:
        folders.append(path.parent)
    artifacts = client.settings.artifacts_uri
    if "://" not in artifacts:
        folders.append(Path(artifacts))
    return tuple(folders)
