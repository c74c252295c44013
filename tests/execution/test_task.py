"""Step tasks are values: an executor can run them in another process (the path Ray will take)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import pl_remote

from loopml.execution.task import StepTask


class ProcessExecutor:
    """A real out-of-process executor: tasks are pickled and run in spawned workers."""

    name = "process"
    shares_memory = False

    def __init__(self) -> None:
        self.pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, task: Callable[[], Any]) -> Future[Any]:
        return self.pool.submit(task)

    def shutdown(self) -> None:
        self.pool.shutdown()


def test_a_task_pickles_without_in_process_state(client: Any) -> None:
    dag = pl_remote.remote_sum.dag(n=3)
    node = dag.node("numbers")
    task = StepTask(node, {"n": 3}, {}, "r" * 32, "s" * 32, client.settings)
    task.values, task.client = {"big": object()}, client
    clone = pickle.loads(pickle.dumps(task))
    assert clone.client is None and clone.run is None and clone.values == {}
    assert clone.node.step is node.step  # module-level steps travel by reference
    assert clone.settings == client.settings


def test_a_pipeline_runs_in_worker_processes_and_caches_like_a_local_run(client: Any) -> None:
    executor = ProcessExecutor()
    try:
        run = pl_remote.remote_sum.run({"n": 5}, client=client, executor=executor)
    finally:
        executor.shutdown()
    assert run.status == "succeeded"
    result = run.output("total")
    assert result["total"] == 10
    assert result["pid"] != os.getpid()  # it really ran elsewhere
    assert run.metrics == {"total": 10.0}  # logged from the worker through the store
    assert run.record.executor == "process"

    again = pl_remote.remote_sum.run({"n": 5}, client=client)  # local executor
    assert [s.cached for s in again.steps] == [True, True]
    assert again.metrics == {"total": 10.0}
    assert again.output("total") == result
