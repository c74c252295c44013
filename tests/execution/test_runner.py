"""The runner: the step cache, failures, and what each step's record shows."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pl_basic
import pl_failing
import pytest
from pl_basic import train

from loopml import Client, Run, pipeline, register_materializer, step
from loopml.errors import MaterializerError, StepFailedError


def cached(run: Run) -> dict[str, bool]:
    return {s.name: s.cached for s in run.steps}


# -- cache ------------------------------------------------------------------------------------


def test_second_identical_run_is_all_cached_with_same_outputs_and_metrics() -> None:
    first = train(n=6, alpha=0.5)
    second = train(n=6, alpha=0.5)
    assert second.id != first.id and second.label == "train#2"
    assert second.status == "succeeded"
    assert cached(first) == dict.fromkeys(cached(first), False)
    assert cached(second) == dict.fromkeys(cached(first), True)
    assert second.outputs() == first.outputs()
    assert second.output("evaluate") == first.output("evaluate")
    assert second.metrics == first.metrics
    assert second.metric_history("loss") and [
        (p.step, p.value) for p in second.metric_history("loss")
    ] == [(p.step, p.value) for p in first.metric_history("loss")]
    for s in second.steps:
        assert s.status == "succeeded" and s.wall_s == 0.0
        assert s.cache_key == next(f.cache_key for f in first.steps if f.name == s.name)


def test_changing_a_param_reruns_that_step_and_downstream_only() -> None:
    train(n=6, alpha=0.5)
    run = train(n=6, alpha=0.25)
    assert cached(run) == {
        "load": True,
        "split": True,
        "fit": False,
        "describe": True,
        "evaluate": False,
    }
    assert run.output("fit") == 0.75
    assert run.metrics["loss"] == pytest.approx(0.25)
    everything = train(n=8, alpha=0.25)
    assert not any(cached(everything).values())


def test_cache_false_reruns_everything() -> None:
    train(n=6)
    run = train.run({"n": 6}, cache=False)
    assert not any(cached(run).values())
    assert run.metrics["auc"] == 0.95
    assert all(cached(train(n=6)).values())  # and the cache is still usable afterwards


def test_step_with_cache_false_always_runs_but_identical_output_keeps_downstream_cached() -> None:
    calls: list[int] = []

    @step(cache=False)
    def fetch(n: int) -> list[int]:
        calls.append(n)
        return list(range(n))

    @pipeline
    def fresh(n: int = 3):
        return pl_basic.describe(fetch(n))

    first, second = fresh(), fresh()
    assert calls == [3, 3]
    assert cached(first) == {"fetch": False, "describe": False}
    assert cached(second) == {"fetch": False, "describe": True}


class Counted:
    """A value whose materializer counts every time loopml reads one back from the store."""

    def __init__(self, value: int) -> None:
        self.value = value


class CountingMaterializer:
    name, extension = "test.counted", ".txt"

    def __init__(self) -> None:
        self.loads = 0

    def save(self, value: Counted, path: Path) -> dict[str, Any]:
        path.write_text(str(value.value))
        return {}

    def load(self, path: Path, metadata: dict[str, Any]) -> Counted:
        self.loads += 1
        return Counted(int(path.read_text()))


def test_cache_survives_a_new_client_and_only_reads_what_it_needs(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.artifacts.materializers import default_registry as registry
    from loopml.tracking import client as client_module

    for table in ("_types", "_named"):  # the registration ends with the test
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))
    counter = CountingMaterializer()
    register_materializer(Counted, counter)

    @step
    def make(n: int) -> Counted:
        return Counted(n)

    @step
    def use(item: Counted, k: int) -> int:
        return item.value * k

    @pipeline
    def reader(n: int = 3, k: int = 2) -> Any:
        return use(make(n), k)

    assert reader().output("use") == 6
    assert counter.loads == 0  # a fresh output is handed on in memory, not read back
    client_module._clients.clear()  # a new client: the cache lives in the store
    again = reader()
    assert cached(again) == {"make": True, "use": True}
    assert counter.loads == 0  # all cached: make's stored output is never read
    changed = reader(k=5)
    assert cached(changed) == {"make": True, "use": False}
    assert changed.output("use") == 15
    assert counter.loads == 1  # use re-ran and read make's stored output, once


def test_deleted_blob_is_a_cache_miss_not_a_broken_run(project: Path) -> None:
    first = train(n=4)
    digest = first.outputs()["load"]
    blobs = [p for p in (project / ".loopml").rglob(digest[2:]) if p.parent.name == digest[:2]]
    assert blobs, "the load output should be a blob named by its digest"
    for blob in blobs:
        blob.unlink()
    run = train(n=4)
    assert run.status == "succeeded"
    assert cached(run)["load"] is False
    assert run.output("load") == [0, 1, 2, 3]


# -- failures ---------------------------------------------------------------------------------


def test_failing_step_raises_with_name_cause_and_marks_the_run(project: Path) -> None:
    with pytest.raises(StepFailedError) as info:
        pl_failing.fails(n=2)
    err = info.value
    assert err.step == "explode"
    assert isinstance(err.__cause__, ValueError) and str(err.__cause__) == "bad value 2"
    assert "'explode'" in str(err) and "bad value 2" in str(err)
    run = Client().get_run("fails#1")
    assert run.status == "failed"
    assert "bad value 2" in (run.record.error or "")
    assert {s.name: s.status for s in run.steps} == {
        "source": "succeeded",
        "explode": "failed",
        "after": "skipped",
        "after_2": "skipped",
    }
    failed = run.steps[1]
    assert failed.error == "ValueError: bad value 2"
    assert err.run_id == run.id


def test_failing_step_traceback_starts_at_the_users_frame() -> None:
    with pytest.raises(StepFailedError) as info:
        pl_failing.fails(n=0)
    stored = Client().get_run("fails#1").steps[1].traceback or ""
    assert stored == info.value.traceback
    files = [line.strip() for line in stored.splitlines() if line.strip().startswith("File ")]
    assert files, stored
    assert pl_failing.__file__ in files[0] and "in explode" in files[0]
    assert all("loopml/execution" not in f for f in files)
    assert stored.rstrip().endswith("ValueError: bad value 0")


def test_parallel_branch_that_was_running_completes_when_another_fails() -> None:
    started = threading.Event()
    finished: list[str] = []

    @step
    def slow(x: int) -> int:
        started.set()
        threading.Event().wait(0.3)
        finished.append("slow")
        return x

    @step
    def broken(x: int) -> int:
        assert started.wait(10)
        raise RuntimeError("broken on purpose")

    @step
    def join(a: int, b: int) -> int:
        return a + b

    @pipeline
    def race(x: int = 1):
        return join(slow(x), broken(x))

    with pytest.raises(StepFailedError) as info:
        race.run({}, workers=2)
    assert info.value.step == "broken"
    assert finished == ["slow"]
    run = Client().get_run("race#1")
    assert {s.name: s.status for s in run.steps} == {
        "slow": "succeeded",
        "broken": "failed",
        "join": "skipped",
    }
    assert run.output("slow") == 1  # the finished branch is stored and reusable
    with pytest.raises(StepFailedError):
        race.run({}, workers=2)
    assert cached(Client().get_run("race#2")) == {"slow": True, "broken": False, "join": False}


def test_unstorable_output_names_step_output_type_and_fix() -> None:
    with pytest.raises(StepFailedError) as info:
        pl_failing.unstorable()
    assert isinstance(info.value.__cause__, MaterializerError)
    run = Client().get_run("unstorable#1")
    assert run.status == "failed"
    step_run = next(s for s in run.steps if s.name == "opaque")
    message = step_run.error or ""
    assert step_run.status == "failed"
    assert "'opaque'" in message and "output 'opaque'" in message
    assert "pl_failing.Opaque" in message and "register_materializer" in message
    assert [s.status for s in run.steps] == ["succeeded", "failed", "skipped"]


def test_failures_never_lose_earlier_runs() -> None:
    good = train(n=4)
    with pytest.raises(StepFailedError):
        pl_failing.fails()
    with pytest.raises(StepFailedError):
        pl_failing.unstorable()
    again = Client().get_run(good.id)
    assert again.status == "succeeded"
    assert again.output("split.train") == [0, 1]
    assert again.metrics == good.metrics
    assert sorted(r.status for r in Client().search_runs()) == ["failed", "failed", "succeeded"]
    assert all(cached(train(n=4)).values())


def test_a_failed_step_is_not_cached_but_its_upstream_is() -> None:
    with pytest.raises(StepFailedError):
        pl_failing.fails(n=1)
    with pytest.raises(StepFailedError):
        pl_failing.fails(n=1)
    run = Client().get_run("fails#2")
    assert [(s.name, s.status, s.cached) for s in run.steps] == [
        ("source", "succeeded", True),
        ("explode", "failed", False),
        ("after", "skipped", False),
        ("after_2", "skipped", False),
    ]


def test_ctrl_c_while_steps_run_cancels_the_run() -> None:
    # What the test relies on, said plainly if an earlier test in this process broke it:
    # Python's own Ctrl-C handler, and SIGINT not blocked in the main thread.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    release = threading.Event()

    main = threading.main_thread().ident

    def main_thread_waits_on_steps() -> bool:
        frame = sys._current_frames().get(main)
        names = []
        while frame is not None:
            names.append((frame.f_code.co_filename, frame.f_code.co_name))
            frame = frame.f_back
        return any(f.endswith("_base.py") and n == "wait" for f, n in names)

    @step
    def press_ctrl_c(x: int) -> int:
        # Press Ctrl-C once the main thread blocks in its wait on the steps, where a person's
        # Ctrl-C lands (watched through its stack, not guessed with a sleep).
        deadline = time.monotonic() + 60
        while not main_thread_waits_on_steps() and time.monotonic() < deadline:
            release.wait(0.005)
        os.kill(os.getpid(), signal.SIGINT)
        release.wait(30)
        return x

    @step
    def never(x: int) -> int:
        return x

    @pipeline
    def interrupted(x: int = 1):
        return never(press_ctrl_c(x))

    try:
        with pytest.raises(KeyboardInterrupt):
            interrupted.run({}, workers=1)
    finally:
        release.set()
    run = Client().get_run("interrupted#1")
    assert run.status == "cancelled"
    assert [s.status for s in run.steps] == ["cancelled", "cancelled"]


# -- step records -----------------------------------------------------------------------------


def test_step_records_measure_time_cpu_memory_and_output() -> None:
    @step
    def chatty(n: int) -> int:
        print("hello from chatty")
        print("warning from chatty", file=sys.stderr)
        return sum(i * i for i in range(n))

    @pipeline
    def talk(n: int = 20_000):
        return chatty(n)

    run = talk()
    (record,) = run.steps
    assert record.status == "succeeded" and record.cached is False
    assert record.wall_s is not None and record.wall_s > 0
    assert record.cpu_s is not None and record.cpu_s >= 0
    assert record.peak_mem_bytes is not None and record.peak_mem_bytes > 0
    assert record.stdout == "hello from chatty\n"
    assert record.stderr == "warning from chatty\n"
    assert record.started_at is not None and record.ended_at is not None
    assert record.ended_at >= record.started_at
    assert record.traceback is None and record.error is None


def test_print_in_a_step_still_reaches_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    run = train(n=3)
    assert run.steps[0].stdout == "loading 3 rows\n"
    assert "loading 3 rows" in capsys.readouterr().out


def test_exception_text_in_step_failure_is_formatted_like_python() -> None:
    with pytest.raises(StepFailedError) as info:
        pl_failing.fails(n=5)
    expected = "".join(traceback.format_exception_only(ValueError("bad value 5"))).strip()
    assert info.value.error == expected
