"""Running a pipeline's DAG: cache look-ups, scheduling, tracking, failure handling.

The runner lives in the calling process and owns every metadata write about the run;
executors only run step tasks (see ``base.py``). For each ready step it computes the
cache key from the step's code fingerprint, its constant parameters and the digests of
its inputs. A hit records the step as cached without loading anything; a miss submits
a task. A failed step stops its downstream steps (``skipped``), lets running branches
finish, and fails the run with the step's own traceback.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any

from loopml.errors import LoopmlError, StepFailedError
from loopml.execution.base import Executor, StepResult
from loopml.execution.local import LocalExecutor
from loopml.execution.task import StepTask
from loopml.pipelines.dag import Dag, Node
from loopml.pipelines.fingerprint import cache_key, code_fingerprint, params_json
from loopml.tracking.client import Client, default_client
from loopml.tracking.run import Run, status_for

if TYPE_CHECKING:
    from loopml.pipelines.pipeline import Pipeline

Progress = Callable[..., None]
GB = 1024**3


def run_pipeline(
    pipeline: Pipeline,
    dag: Dag,
    params: dict[str, Any],
    *,
    cache: bool = True,
    workers: int | None = None,
    client: Client | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> Run:
    """Execute ``dag`` as a tracked run of ``pipeline`` and return the finished run."""
    client = (client or default_client()).open()
    own_executor = executor is None
    executor = executor or LocalExecutor(workers or client.settings.workers)
    run = Run.start(client, pipeline.name, executor=executor.name)
    runner = _Runner(
        client, run, dag, executor, cache=cache, progress=progress or (lambda *a, **k: None)
    )
    try:
        run.log_params({k: _param_text(v) for k, v in params.items()})
        runner.execute()
    except StepFailedError as exc:
        run.end("failed", error=str(exc), cost=runner.cost)
        raise
    except BaseException as exc:
        status, error = status_for(exc)
        runner.abandon(status)
        run.end(status, error=error, cost=runner.cost)
        raise
    finally:
        if own_executor:
            executor.shutdown()
    run.end("succeeded", cost=runner.cost)
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
        self.status: dict[str, str] = {}
        self.cost = 0.0
        self.deferred: list[Callable[[Any], None]] = []
        self.prices = client.settings.prices

    # -- set-up ---------------------------------------------------------------------------

    def _insert_pending(self) -> None:
        def insert(conn: Any) -> None:
            for position, node in enumerate(self.dag):
                spec = node.step.spec
                self.store.steps.insert(
                    conn,
                    id=self.step_ids[node.name],
                    run_id=self.run.id,
                    name=node.name,
                    position=position,
                    status="pending",
                    cached=False,
                    cpus=spec.cpus,
                    gpus=spec.gpus,
                )

        self.store.db.write(insert)

    def _constants(self, node: Node) -> tuple[str, dict[str, str]]:
        """Canonical JSON of the node's plain parameters, and digests of the ones JSON cannot hold."""
        plain: dict[str, Any] = {}
        stored: dict[str, str] = {}
        for name, value in node.constants:
            try:
                params_json({name: value})
                plain[name] = value
            except (TypeError, ValueError):
                record = self.client.store_value(value)
                stored[name] = record.digest
                self.values[f"{node.name}:{name}"] = value
        return params_json(plain), stored

    # -- the loop -------------------------------------------------------------------------

    def execute(self) -> None:
        self._insert_pending()
        fingerprints = {n.name: code_fingerprint(n.step) for n in self.dag}
        pending = list(self.dag)
        running: dict[Future[StepResult], tuple[Node, str, float]] = {}
        failed: StepResult | None = None
        failed_node: Node | None = None
        while pending or running:
            for node in list(pending):
                if any(self.status.get(up) not in ("succeeded",) for up in node.upstream):
                    if any(self.status.get(up) in ("failed", "skipped") for up in node.upstream):
                        pending.remove(node)
                        self._skip(node)
                    continue
                if failed is not None:
                    pending.remove(node)
                    self._skip(node)
                    continue
                pending.remove(node)
                params, stored = self._constants(node)
                inputs = {param: self.digests[ref.ref] for param, ref in node.inputs} | stored
                spec = node.step.spec
                key = cache_key(
                    f"{spec.module}.{spec.qualname}", fingerprints[node.name], params, inputs
                )
                if self.use_cache and spec.cache and self._try_cache(node, key, inputs):
                    continue
                self._mark_running(node, key)
                task = self._task(node, stored)
                running[self.executor.submit(task)] = (node, key, time.time())
            if not running:
                continue
            # A timeout keeps the main thread responsive to Ctrl-C while steps run.
            done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: f.result().started_at):
                node, key, _submitted = running.pop(future)
                result = future.result()
                started = result.started_at
                inputs = {param: self.digests[ref.ref] for param, ref in node.inputs}
                self._record(node, key, started, result, inputs)
                if isinstance(result.error, SystemExit | KeyboardInterrupt):
                    raise result.error  # the step asked to stop the whole program
                if result.error is not None and failed is None:
                    failed, failed_node = result, node
            if failed is not None:  # steps still queued in the executor never start
                for future in [f for f in running if f.cancel()]:
                    node, _, _ = running.pop(future)
                    self._skip(node)
        self.flush_deferred()
        if failed is not None and failed_node is not None:
            raise StepFailedError(
                failed_node.name, self.run.id, failed.error_text or "error", failed.traceback or ""
            ) from failed.error

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

    def _try_cache(self, node: Node, key: str, inputs: dict[str, str]) -> bool:
        entry = self.store.steps.cache_get(key)
        if entry is None:
            return False
        outputs: dict[str, str] = entry.get("outputs", {})
        if sorted(outputs) != sorted(node.output_refs()):
            return False
        if not all(self.client.artifacts.exists(d) for d in outputs.values()):
            return False
        now = time.time()

        def record(conn: Any) -> None:
            self.store.steps.update(
                conn,
                self.step_ids[node.name],
                status="succeeded",
                cached=True,
                cache_key=key,
                started_at=now,
                ended_at=now,
                wall_s=0.0,
                cpu_s=0.0,
            )
            self._links(conn, node, inputs, outputs)

        # Cached steps are recorded in one batch: one transaction for a whole cached chain.
        self.deferred.append(record)
        logged = entry.get("logged", {})
        # Replay what the step logged when it really ran, so a cached run has the same metrics.
        self.run.log_params(logged.get("params", {}))
        for name, value in logged.get("tags", {}).items():
            self.run.set_tag(name, value)
        for name, step, value in logged.get("metrics", []):
            self.run.log_metric(name, value, step=step)
        self.digests.update(outputs)
        self.status[node.name] = "succeeded"
        self.progress("cached", node.name)
        return True

    def _links(
        self, conn: Any, node: Node, inputs: dict[str, str], outputs: dict[str, str]
    ) -> None:
        links = [("input", param, digest) for param, digest in inputs.items()]
        links += [("output", ref, digest) for ref, digest in outputs.items()]
        self.store.lineage.link_many(conn, self.run.id, self.step_ids[node.name], links)

    def _take_deferred(self) -> Callable[[Any], None]:
        """The deferred writes as one idempotent function (safe to re-run after a retry)."""
        batch, self.deferred = self.deferred, []

        def write_all(conn: Any) -> None:
            for write in batch:
                write(conn)

        return write_all

    def flush_deferred(self) -> None:
        if self.deferred:
            self.store.db.write(self._take_deferred())

    def _mark_running(self, node: Node, key: str) -> None:
        started = time.time()
        deferred = self._take_deferred()

        def mark(conn: Any) -> None:
            deferred(conn)
            self.store.steps.update(
                conn, self.step_ids[node.name], status="running", cache_key=key, started_at=started
            )

        self.store.db.write(mark)
        self.progress("started", node.name)

    def _skip(self, node: Node) -> None:
        self.status[node.name] = "skipped"
        self.deferred.append(
            lambda conn: self.store.steps.update(conn, self.step_ids[node.name], status="skipped")
        )
        self.progress("skipped", node.name)

    def _record(
        self, node: Node, key: str, started: float, result: StepResult, inputs: dict[str, str]
    ) -> None:
        spec = node.step.spec
        ok = result.error is None
        status = "succeeded" if ok else "failed"
        outputs = {ref: rec.digest for ref, rec in result.outputs.items()} if ok else {}
        logged = result.logged

        def record(conn: Any) -> None:
            self.store.steps.update(
                conn,
                self.step_ids[node.name],
                status=status,
                cached=False,
                cache_key=key,
                started_at=started,
                ended_at=started + result.wall_s,
                wall_s=result.wall_s,
                cpu_s=result.cpu_s,
                peak_mem_bytes=result.peak_mem_bytes,
                stdout=result.stdout,
                stderr=result.stderr,
                error=result.error_text,
                traceback=result.traceback,
            )
            self._links(conn, node, inputs, outputs)
            if ok:
                entry = {"outputs": outputs, "logged": logged}
                self.store.steps.cache_put(conn, key, node.name, entry, self.step_ids[node.name])

        self.store.db.write(record)
        self.digests.update(outputs)
        self.values.update(result.values)
        self.status[node.name] = status
        hours = result.wall_s / 3600
        memory_gb = (spec.memory or result.peak_mem_bytes) / GB
        self.cost += hours * (
            spec.cpus * self.prices.cpu_hour
            + spec.gpus * self.prices.gpu_hour
            + memory_gb * self.prices.gb_hour
        )
        self.progress(status, node.name, wall_s=result.wall_s, error=result.error_text)

    def abandon(self, status: str) -> None:
        """After an interrupt or exit: unfinished steps become ``cancelled`` (or ``skipped``)."""
        status = "cancelled" if status == "cancelled" else "skipped"
        deferred = self._take_deferred()

        def mark(conn: Any) -> None:
            deferred(conn)
            for node in self.dag:
                if self.status.get(node.name) is None:
                    self.store.steps.update(conn, self.step_ids[node.name], status=status)

        try:
            self.store.db.write(mark)
        except LoopmlError:
            pass
