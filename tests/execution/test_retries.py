"""@step(retries=, timeout=) on the local executor: attempts counted, failures kept, timeouts."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from loopml import pipeline, step
from loopml.errors import StepFailedError


def test_a_step_that_fails_once_is_retried_and_its_first_failure_kept(client: Any) -> None:
    calls: list[int] = []

    @step(retries=2)
    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise ConnectionError("the database hung up")
        return x * 2

    @pipeline
    def p(x: int = 3) -> None:
        flaky(x)

    run = p.run({"x": 3}, client=client)
    assert run.status == "succeeded" and run.output("flaky") == 6
    (s,) = run.steps
    assert s.attempts == 2 and len(calls) == 2
    failures = s.reason["failed_attempts"]  # type: ignore[index]
    assert [f["attempt"] for f in failures] == [1]
    assert "ConnectionError: the database hung up" in failures[0]["error"]
    assert s.host  # where it ran: this machine
    assert s.error is None


def test_retries_run_out_and_the_last_error_fails_the_run(client: Any) -> None:
    calls: list[int] = []

    @step(retries=1)
    def broken(x: int) -> int:
        calls.append(x)
        raise ValueError(f"bad value on attempt {len(calls)}")

    @pipeline
    def p(x: int = 1) -> None:
        broken(x)

    with pytest.raises(StepFailedError, match="bad value on attempt 2") as caught:
        p.run({"x": 1}, client=client)
    assert len(calls) == 2
    record = client.run_record(caught.value.run_id)
    assert record.status == "failed"
    (s,) = client.steps(record.id)
    assert s.status == "failed" and s.attempts == 2
    assert "bad value on attempt 1" in s.reason["failed_attempts"][0]["error"]  # type: ignore[index]


def test_without_retries_a_step_runs_once(client: Any) -> None:
    calls: list[int] = []

    @step
    def once(x: int) -> int:
        calls.append(x)
        raise RuntimeError("no")

    @pipeline
    def p(x: int = 1) -> None:
        once(x)

    with pytest.raises(StepFailedError):
        p.run({"x": 1}, client=client)
    assert len(calls) == 1


def test_a_step_past_its_timeout_fails_the_run_while_other_steps_finish(client: Any) -> None:
    release = threading.Event()
    started = threading.Event()

    @step(timeout=0.5)
    def stuck(x: int) -> int:
        started.set()
        release.wait(600)  # the local executor cannot stop a thread: it is abandoned
        return x

    @step
    def fine(x: int) -> int:
        return x + 1

    @pipeline
    def p(x: int = 1) -> None:
        stuck(x)
        fine(x)

    try:
        with pytest.raises(StepFailedError, match="ran past its timeout of 0.5s") as caught:
            p.run({"x": 1}, client=client)
        assert started.is_set()
        steps = {s.name: s for s in client.steps(caught.value.run_id)}
        assert steps["stuck"].status == "failed"
        assert "TimeoutError" in (steps["stuck"].error or "")
        assert steps["fine"].status == "succeeded"
    finally:
        release.set()


def test_a_timed_out_attempt_is_retried(client: Any) -> None:
    release = threading.Event()
    attempts: list[int] = []

    @step(timeout=0.5, retries=1)
    def slow_then_fast(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            release.wait(600)
        return x

    @pipeline
    def p(x: int = 1) -> None:
        slow_then_fast(x)

    try:
        run = p.run({"x": 1}, client=client)
    finally:
        release.set()
    (s,) = run.steps
    assert run.status == "succeeded" and s.attempts == 2
    assert "ran past its timeout" in s.reason["failed_attempts"][0]["error"]  # type: ignore[index]
