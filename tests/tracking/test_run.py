"""``Run``: ad-hoc tracked runs, how each way of ending maps to a status, and display."""

from __future__ import annotations

import sys
from pathlib import Path

import pl_basic
import pytest

import loopml
from loopml import Client, Run, pipeline, step
from loopml.errors import InvalidParameterError, LoopmlError


def test_with_block_logs_everything_and_succeeds(project: Path) -> None:
    data = project / "notes.txt"
    data.write_text("hello")
    with loopml.start_run("explore", tags={"team": "ml"}) as run:
        assert loopml.active_run() is run
        assert run.status == "running"
        loopml.log_params({"alpha": 0.5, "layers": [1, 2]})
        loopml.log_param("name", "first")
        loopml.log_metric("loss", 1.0)
        loopml.log_metric("loss", 0.5)
        loopml.log_metrics({"auc": 0.91, "acc": 0.8})
        loopml.set_tag("stage", "dev")
        digest = loopml.log_artifact({"w": [1, 2]}, "weights")
        file_digest = loopml.log_artifact(data, "notes")
    assert loopml.active_run() is None
    assert run.status == "succeeded"
    assert run.label == "explore#1"
    assert run.params == {"alpha": "0.5", "layers": "[1, 2]", "name": "first"}
    assert run.metrics == {"loss": 0.5, "auc": 0.91, "acc": 0.8}
    assert [(p.step, p.value) for p in run.metric_history("loss")] == [(0, 1.0), (1, 0.5)]
    assert run.tags["team"] == "ml" and run.tags["stage"] == "dev"
    assert loopml.load(digest) == {"w": [1, 2]}
    assert Path(loopml.load(file_digest)).read_text() == "hello"
    with pytest.raises(LoopmlError, match="not live"):
        run.log_metric("late", 1.0)


def test_exception_in_block_fails_the_run_and_propagates() -> None:
    with pytest.raises(ValueError, match="boom"), loopml.start_run("bad") as run:
        loopml.log_metric("x", 1.0)
        raise ValueError("boom")
    assert run.status == "failed"
    assert "ValueError: boom" in (run.record.error or "")
    assert run.metrics == {"x": 1.0}


def test_keyboard_interrupt_cancels_the_run() -> None:
    with pytest.raises(KeyboardInterrupt), loopml.start_run("stop") as run:
        raise KeyboardInterrupt
    assert run.status == "cancelled"


@pytest.mark.parametrize(
    ("code", "status"), [(0, "succeeded"), (None, "succeeded"), (1, "failed"), ("bye", "failed")]
)
def test_sys_exit_inside_the_block(code: object, status: str) -> None:
    with pytest.raises(SystemExit), loopml.start_run("exiting") as run:
        sys.exit(code)
    assert run.status == status


def test_step_called_directly_inside_a_run_block_logs_to_it() -> None:
    with loopml.start_run("plain") as run:
        assert pl_basic.fit([1, 2], 1.0) == 3.0
    assert run.metrics["loss"] == pytest.approx(1.0)
    assert run.steps == []


def test_explicit_start_and_end_without_a_with_block() -> None:
    run = loopml.start_run("manual")
    run.log_params({"alpha": 0.1})
    run.log_metric("loss", 2.0)
    run.log_metric("loss", 1.0, step=10)
    run.set_tag("k", 3)
    assert run.live and run.status == "running"
    run.end()
    run.end("failed")  # idempotent: the first end wins
    assert not run.live
    assert run.status == "succeeded"
    assert run.params == {"alpha": "0.1"} and run.tags == {"k": "3"}
    assert [(p.step, p.value) for p in run.metric_history("loss")] == [(0, 2.0), (10, 1.0)]
    record = run.record
    assert record.ended_at is not None and record.duration_s is not None and record.duration_s >= 0
    with pytest.raises(LoopmlError):
        run.log_param("late", 1)


def test_bad_metric_values_fail_at_the_call() -> None:
    run = loopml.start_run("strict")
    try:
        with pytest.raises(InvalidParameterError, match="'loss'"):
            run.log_metric("loss", "high")  # type: ignore[arg-type]
        with pytest.raises(InvalidParameterError):
            run.log_metric("", 1.0)
        run.log_metric("loss", float("nan"))
    finally:
        run.end()
    assert run.status == "succeeded"


def test_module_level_logging_without_a_run_explains_how() -> None:
    for call in (
        lambda: loopml.log_metric("auc", 0.9),
        lambda: loopml.log_params({"a": 1}),
        lambda: loopml.set_tag("a", "b"),
        lambda: loopml.log_artifact(b"x", "blob"),
    ):
        with pytest.raises(LoopmlError) as info:
            call()
        message = str(info.value)
        assert "No active run" in message and "start_run" in message and "@step" in message


def test_a_run_read_back_cannot_be_logged_to() -> None:
    run = loopml.start_run("reader")
    run.end()
    again = Client().get_run(run.id)
    assert again.status == "succeeded" and not again.live
    with pytest.raises(LoopmlError, match="not live"):
        again.log_metric("x", 1.0)


def test_active_run_inside_a_step_is_the_pipeline_run() -> None:
    seen: list[object] = []

    @step
    def peek(x: int) -> int:
        seen.append(loopml.active_run())
        loopml.set_tag("peeked", "yes")
        loopml.log_param("inner", x)
        return x

    @pipeline
    def look(x: int = 2):
        return peek(x)

    run = look()
    assert len(seen) == 1 and isinstance(seen[0], Run) and seen[0].id == run.id  # type: ignore[attr-defined]
    assert run.tags["peeked"] == "yes" and run.params["inner"] == "2"
    assert loopml.active_run() is None
    replay = look()
    assert (
        replay.steps[0].cached and replay.tags["peeked"] == "yes" and replay.params["inner"] == "2"
    )


def test_repr_html_shows_status_params_metrics_and_steps() -> None:
    run = pl_basic.train(n=4)
    page = run._repr_html_()
    assert "succeeded" in page and "train#1" in page and run.id[:8] in page
    assert "<td>alpha</td><td>0.5</td>" in page
    assert "<td>auc</td><td>0.95</td>" in page
    for name in ("load", "split", "fit", "describe", "evaluate"):
        assert f"<td>{name}</td>" in page
    cached = pl_basic.train(n=4)._repr_html_()
    assert "(cached)" in cached


def test_repr_html_escapes_user_text() -> None:
    run = loopml.start_run("<script>alert('name')</script>")
    run.log_params({"evil": "<script>alert(1)</script>", "amp": "a & b"})
    run.log_metric("loss", 0.25)
    run.end("failed", error="<img src=x onerror=alert(2)>")
    page = run._repr_html_()
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &amp; b" in page
    assert "failed" in page and "0.25" in page


def test_repr_html_of_a_running_run() -> None:
    run = loopml.start_run("live")
    try:
        assert "running" in run._repr_html_()
        assert "running" in repr(run)
    finally:
        run.end()
