"""The local executor: independent branches in parallel, per-step output capture."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from loopml import Client, pipeline, step
from loopml.errors import StepFailedError
from loopml.execution import LocalExecutor
from loopml.pipelines.pipeline import Pipeline


def barrier_pipeline(timeout: float) -> tuple[Pipeline, threading.Barrier]:
    """Two independent steps that can only both finish if they run at the same time."""
    barrier = threading.Barrier(2, timeout=timeout)

    @step
    def left(x: int) -> str:
        print("left says hi")
        barrier.wait()
        print("left done")
        return f"left {x}"

    @step
    def right(x: int) -> str:
        print("right says hi")
        barrier.wait()
        print("right done")
        return f"right {x}"

    @step
    def both(a: str, b: str) -> str:
        return f"{a} + {b}"

    @pipeline
    def meet(x: int = 1):
        return both(left(x), right(x))

    return meet, barrier


def test_independent_branches_run_in_parallel() -> None:
    meet, _ = barrier_pipeline(timeout=10)
    run = meet.run({}, workers=2)
    assert run.status == "succeeded"
    assert run.output("both") == "left 1 + right 1"
    steps = {s.name: s for s in run.steps}
    assert steps["left"].stdout == "left says hi\nleft done\n"
    assert steps["right"].stdout == "right says hi\nright done\n"


def test_one_worker_runs_steps_one_at_a_time_without_deadlocking() -> None:
    meet, barrier = barrier_pipeline(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StepFailedError) as info:
        meet.run({}, workers=1)
    assert time.monotonic() - started < 10
    assert isinstance(info.value.__cause__, threading.BrokenBarrierError)
    # left timed out; right, queued behind it, may finish in the same wait and be the one named
    assert info.value.step in ("left", "right")
    run = Client().get_run("meet#1")
    assert run.status == "failed"
    statuses = {s.name: s.status for s in run.steps}
    assert statuses["left"] == "failed" and statuses["both"] == "skipped"
    # right was already queued behind left; it then meets a broken barrier (or is skipped)
    assert statuses["right"] in ("failed", "skipped")
    assert "BrokenBarrierError" in (run.steps[0].error or "")
    assert barrier.broken


def test_queued_step_times_are_when_it_really_ran() -> None:
    @step
    def first(x: int) -> int:
        time.sleep(0.2)
        return x

    @step
    def second(x: int) -> int:
        time.sleep(0.2)
        return x

    @pipeline
    def serial(x: int = 1):
        return first(x), second(x)

    steps = {s.name: s for s in serial.run({}, workers=1).steps}
    assert steps["second"].started_at >= steps["first"].ended_at - 0.01  # type: ignore[operator]
    assert steps["second"].ended_at >= steps["second"].started_at + 0.2  # type: ignore[operator]


def test_steps_still_queued_when_another_fails_do_not_start() -> None:
    ran: list[str] = []
    skipped = threading.Event()

    def progress(event: str, name: str, **_: object) -> None:
        if (event, name) == ("skipped", "queued"):
            skipped.set()

    @step
    def fails_fast(x: int) -> int:
        raise RuntimeError("first")

    @step
    def busy(x: int) -> int:
        # Holds the only worker until the runner has dealt with the failure, however long
        # a busy machine makes that take (a 0.5 s nap here was a guess).
        assert skipped.wait(60), "the queued step was never skipped"
        ran.append("busy")
        return x

    @step
    def queued(x: int) -> int:
        ran.append("queued")
        return x

    @pipeline
    def crowd(x: int = 1):
        return fails_fast(x), busy(x), queued(x)

    with pytest.raises(StepFailedError):
        crowd.run({}, workers=1, progress=progress)
    statuses = {s.name: s.status for s in Client().get_run("crowd#1").steps}
    assert "queued" not in ran
    assert statuses["fails_fast"] == "failed" and statuses["queued"] == "skipped"


@dataclass
class Crowd:
    """What the steps of a crowd pipeline saw: most running at once, and on which threads."""

    limit: int
    running: int = 0
    peak: int = 0
    threads: set[str] = field(default_factory=set)


def crowd_pipeline(limit: int) -> tuple[Pipeline, Crowd]:
    """Five independent steps; each waits until ``limit`` of them run at once, then ends.

    The wait is on an Event set by the step that makes ``limit`` run at once, so reaching
    the limit never depends on timing; a counter under a lock records the most ever running.
    The counter alone cannot prove the cap (with 32 workers the first two steps may end
    before the third starts), so the steps also record their threads: five steps on
    ``limit`` threads, each running one step at a time, never had more than ``limit`` at once.
    """
    crowd = Crowd(limit)
    lock = threading.Lock()
    full = threading.Event()

    def member(i: int) -> Any:
        @step(name=f"member_{i}")
        def run_one(x: int) -> int:
            with lock:
                crowd.running += 1
                crowd.peak = max(crowd.peak, crowd.running)
                crowd.threads.add(threading.current_thread().name)
                if crowd.running == limit:
                    full.set()
            try:
                assert full.wait(60), f"{limit} steps never ran at once"
            finally:
                with lock:
                    crowd.running -= 1
            return x + i

        return run_one

    m0, m1, m2, m3, m4 = (member(i) for i in range(5))

    @pipeline
    def gathering(x: int = 1) -> tuple[Any, ...]:
        return m0(x), m1(x), m2(x), m3(x), m4(x)

    return gathering, crowd


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_caps_how_many_steps_run_at_once(workers: int) -> None:
    gathering, crowd = crowd_pipeline(limit=workers)
    run = gathering.run({}, workers=workers)
    assert run.status == "succeeded"
    assert [run.output(f"member_{i}") for i in range(5)] == [1, 2, 3, 4, 5]
    assert crowd.peak == workers  # `workers` steps did run at once
    assert len(crowd.threads) == workers  # and never more: five steps shared `workers` threads


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_setting_in_loopml_toml_is_the_default(project: Path, workers: int) -> None:
    (project / "loopml.toml").write_text(f'[project]\nname = "t"\n\n[run]\nworkers = {workers}\n')
    from loopml.tracking import client as client_module

    client_module._clients.clear()
    gathering, crowd = crowd_pipeline(limit=workers)
    assert gathering().status == "succeeded"
    assert crowd.peak == workers
    assert len(crowd.threads) == workers  # the default of 32 would have used five


def test_captured_output_of_parallel_steps_does_not_mix() -> None:
    gate = threading.Barrier(2, timeout=10)

    def make(tag: str) -> object:
        @step(name=f"talk_{tag}")
        def talk(n: int) -> int:
            gate.wait()
            for i in range(n):
                print(f"{tag}-{i}")
                time.sleep(0.001)
            return n

        return talk

    a, b = make("a"), make("b")

    @pipeline
    def chorus(n: int = 30):
        return a(n), b(n)  # type: ignore[operator]

    run = chorus.run({}, workers=2)
    out = {s.name: s.stdout or "" for s in run.steps}
    assert out["talk_a"].splitlines() == [f"a-{i}" for i in range(30)]
    assert out["talk_b"].splitlines() == [f"b-{i}" for i in range(30)]


def test_local_executor_runs_tasks_on_threads_and_reports_errors() -> None:
    executor = LocalExecutor(workers=2)
    assert executor.get_params() == {"workers": 2} and "2" in repr(executor)
    assert executor.shares_memory is True and executor.name == "local"
    barrier = threading.Barrier(2, timeout=10)
    names: list[str] = []

    def task() -> int:
        names.append(threading.current_thread().name)
        return barrier.wait()

    def failing() -> int:
        raise ZeroDivisionError("nope")

    try:
        first, second = executor.submit(task), executor.submit(task)
        assert sorted([first.result(timeout=10), second.result(timeout=10)]) == [0, 1]
        assert all(n.startswith("loopml-step-") for n in names)
        assert threading.current_thread().name not in names
        with pytest.raises(ZeroDivisionError):
            executor.submit(failing).result(timeout=10)
        assert (
            executor.submit(lambda: 7).result(timeout=10) == 7
        )  # a failed task does not kill the pool
    finally:
        executor.shutdown()


def test_local_executor_threads_are_daemons_and_capped() -> None:
    executor = LocalExecutor(workers=1)
    seen: set[str] = set()
    daemons: set[bool] = set()

    def task() -> None:
        seen.add(threading.current_thread().name)
        daemons.add(threading.current_thread().daemon)

    try:
        for future in [executor.submit(task) for _ in range(5)]:
            future.result(timeout=10)
    finally:
        executor.shutdown()
    assert seen == {"loopml-step-0"}
    assert daemons == {True}


def test_a_custom_executor_instance_is_used_and_left_open() -> None:
    executor = LocalExecutor(workers=2)
    try:
        meet, _ = barrier_pipeline(timeout=10)
        run = meet.run({}, executor=executor)
        assert run.status == "succeeded"
        assert run.record.executor == "local"
        assert executor.submit(lambda: "still open").result(timeout=10) == "still open"
    finally:
        executor.shutdown()
