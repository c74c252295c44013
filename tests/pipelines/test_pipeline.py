"""Calling a ``@pipeline``: the Run it returns, outputs, params, metrics, bad arguments."""

from __future__ import annotations

from pathlib import Path

import pl_basic
import pl_outputs
import pytest
from pl_basic import train

import loopml
from loopml import Client, Run
from loopml.errors import InvalidParameterError, NotFoundError, StepFailedError


def test_calling_a_pipeline_returns_a_succeeded_run(project: Path) -> None:
    run = train(n=6, alpha=0.5)
    assert isinstance(run, Run)
    assert run.status == "succeeded"
    assert run.label == "train#1"
    assert run.params == {"n": "6", "alpha": "0.5"}
    assert run.output("load") == [0, 1, 2, 3, 4, 5]
    assert run.output("split.train") == [0, 1, 2]
    assert run.output("split.test") == [3, 4, 5]
    assert run.output("fit") == 1.5
    assert run.output("describe") == {"rows": 6}
    assert run.output("evaluate") == {"score": pytest.approx(1.5 / 13)}
    assert (project / ".loopml").is_dir()


def test_metrics_logged_in_steps_reach_the_run() -> None:
    run = train(n=4, alpha=1.0)
    # train = [0, 1], test = [2, 3]: loss 1.0 then 0.5 then 1/3; score = 1 / (1 + 5)
    assert run.metrics == {"loss": pytest.approx(1 / 3), "auc": 0.95, "score": pytest.approx(1 / 6)}
    history = run.metric_history("loss")
    assert [p.step for p in history] == [0, 1, 2]
    assert [p.value for p in history] == pytest.approx([1.0, 0.5, 1 / 3])


def test_defaults_fill_missing_params_and_positional_args_work() -> None:
    run = train(8)
    assert run.params == {"n": "8", "alpha": "0.5"}
    assert run.output("fit") == 3.0


def test_runs_are_numbered_per_pipeline() -> None:
    assert train(n=2).label == "train#1"
    assert pl_outputs.by_attr().label == "by_attr#1"
    assert train(n=3).label == "train#2"
    labels = sorted(r.label for r in Client().search_runs())
    assert labels == ["by_attr#1", "train#1", "train#2"]


def test_run_repr_and_unknown_output() -> None:
    run = train(n=2)
    assert "train#1" in repr(run) and "succeeded" in repr(run)
    with pytest.raises(NotFoundError) as info:
        run.output("fitt")
    assert "Did you mean 'fit'?" in str(info.value)


def test_run_method_and_top_level_load() -> None:
    run = train.run({"n": 4}, workers=1)
    assert run.status == "succeeded"
    digest = run.outputs()["split.test"]
    assert loopml.load(digest) == [2, 3]
    assert loopml.load(digest[:12]) == [2, 3]


@pytest.mark.parametrize("pipe", [pl_outputs.by_attr, pl_outputs.by_item, pl_outputs.by_unpacking])
def test_outputs_declared_with_step_outputs(pipe: loopml.Pipeline) -> None:
    run = pipe(n=6)
    assert run.output("halves.train") == [0, 1, 2]
    assert run.output("halves.test") == [3, 4, 5]
    assert run.output("total") == 3
    assert run.output("total_2") == 12
    assert sorted(run.outputs()) == ["halves.test", "halves.train", "total", "total_2"]


def test_named_outputs_may_be_returned_as_a_dict() -> None:
    run = pl_outputs.dict_outputs(n=4)
    assert (run.output("as_dict.a"), run.output("as_dict.b"), run.output("add")) == (4, -4, 0)


def test_wrong_output_arity_fails_the_step_with_a_clear_error() -> None:
    with pytest.raises(StepFailedError) as info:
        pl_outputs.wrong_arity()
    message = str(info.value)
    assert info.value.step == "three_values"
    assert "declares outputs ['a', 'b']" in message and "length 3" in message
    run = Client().get_run("wrong_arity#1")
    assert run.status == "failed"
    assert {s.name: s.status for s in run.steps} == {"three_values": "failed", "add": "skipped"}


def test_unknown_parameter_is_rejected_with_a_suggestion(project: Path) -> None:
    with pytest.raises(InvalidParameterError) as info:
        train(alpah=0.1)
    assert "'alpah'" in str(info.value) and "Did you mean 'alpha'?" in str(info.value)
    assert "['n', 'alpha']" in str(info.value)
    with pytest.raises(InvalidParameterError):
        train.run({"nn": 3})
    assert not (project / ".loopml").exists()


def test_missing_required_parameter_is_rejected() -> None:
    from loopml import pipeline

    @pipeline
    def needs(alpha: float):
        return pl_basic.load(3)

    with pytest.raises(InvalidParameterError, match="alpha"):
        needs()
    with pytest.raises(InvalidParameterError):
        train(1, 2, 3)


# -- on both backends ------------------------------------------------------------------------


def test_pipeline_runs_on_each_backend(client: Client) -> None:
    run = train(n=6, alpha=0.5)
    assert run.client is client
    assert run.status == "succeeded"
    assert run.output("split.train") == [0, 1, 2]
    assert run.metrics["auc"] == 0.95
    assert [p.value for p in run.metric_history("loss")] == pytest.approx([1.5, 0.75, 0.5])
    assert [s.status for s in run.steps] == ["succeeded"] * 5
    again = train(n=6, alpha=0.5)
    assert [s.cached for s in again.steps] == [True] * 5
    assert again.metrics == run.metrics
    found = client.search_runs("metrics.auc > 0.9 and params.n = '6'")
    assert sorted(r.label for r in found) == ["train#1", "train#2"]


def test_pipeline_failure_on_each_backend(client: Client) -> None:
    import pl_failing

    with pytest.raises(StepFailedError) as info:
        pl_failing.fails(n=1)
    assert isinstance(info.value.__cause__, ValueError)
    run = client.get_run("fails#1")
    assert run.status == "failed"
    assert [s.status for s in run.steps] == ["succeeded", "failed", "skipped", "skipped"]
    assert "bad value 1" in (run.steps[1].error or "")
