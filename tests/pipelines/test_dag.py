"""The DAG a pipeline body builds: names, wiring, sub-DAGs and wiring mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pl_basic import describe, evaluate, fit, load, split, train
from pl_outputs import halves, total

from loopml import pipeline, step
from loopml.errors import NotFoundError, PipelineDefinitionError
from loopml.pipelines.dag import Dag


@step
def inc(x: int) -> int:
    return x + 1


@step
def add(x: int, y: int) -> int:
    return x + y


def test_dag_lists_steps_in_topological_order_with_edges(project: Path) -> None:
    dag = train.dag(n=4)
    assert [n.name for n in dag] == ["load", "split", "fit", "describe", "evaluate"]
    assert len(dag) == 5
    assert set(dag.edges()) == {
        ("load", "split"),
        ("split", "fit"),
        ("load", "describe"),
        ("fit", "evaluate"),
        ("split", "evaluate"),
    }
    assert dag.node("fit").step is fit
    assert dict(dag.node("fit").constants) == {"alpha": 0.5}
    assert dict(dag.node("load").constants) == {"n": 4}
    assert {p: ref.ref for p, ref in dag.node("evaluate").inputs} == {
        "model": "fit",
        "test": "split.test",
    }
    assert dag.node("split").output_refs() == ["split.train", "split.test"]
    assert not (project / ".loopml").exists()  # building a DAG runs nothing and stores nothing


def test_unknown_node_names_the_steps_and_suggests() -> None:
    with pytest.raises(NotFoundError) as info:
        train.dag().node("fitt")
    assert "'fitt'" in str(info.value) and "Did you mean 'fit'?" in str(info.value)


def test_upstream_of_and_without_return_new_dags() -> None:
    dag = train.dag()
    up = dag.upstream_of("fit")
    assert isinstance(up, Dag) and up is not dag
    assert [n.name for n in up] == ["load", "split", "fit"]
    assert [n.name for n in dag.upstream_of("describe")] == ["load", "describe"]
    cut = dag.without("split")
    assert [n.name for n in cut] == ["load", "describe"]
    assert [n.name for n in dag.without("evaluate")] == ["load", "split", "fit", "describe"]
    assert len(dag) == 5  # the original is unchanged
    with pytest.raises(NotFoundError):
        dag.without("nope")


def test_steps_used_twice_get_numbered_names() -> None:
    @pipeline
    def chain(x: int = 0):
        return inc(inc(inc(x)))

    dag = chain.dag()
    assert [n.name for n in dag] == ["inc", "inc_2", "inc_3"]
    assert dag.edges() == [("inc", "inc_2"), ("inc_2", "inc_3")]
    run = chain(x=1)
    assert run.output("inc_3") == 4
    assert [s.name for s in run.steps] == ["inc", "inc_2", "inc_3"]


def test_multi_output_references() -> None:
    @pipeline
    def refs(n: int = 4):
        parts = halves(n)
        a = total(parts.train)
        b = total(parts["test"])
        c = total(parts[0])
        train_part, test_part = parts
        return total(train_part), total(test_part), a, b, c

    dag = refs.dag()
    got = [ref.ref for n in dag for _, ref in n.inputs]
    assert got == ["halves.train", "halves.test", "halves.train", "halves.train", "halves.test"]


def test_unknown_output_name_is_a_definition_error() -> None:
    @pipeline
    def wrong(n: int = 4):
        return total(halves(n).validation)

    with pytest.raises(PipelineDefinitionError) as info:
        wrong.dag()
    assert "'validation'" in str(info.value) and "['train', 'test']" in str(info.value)


def test_passing_all_outputs_is_a_definition_error() -> None:
    @pipeline
    def whole(n: int = 4):
        return total(halves(n))

    with pytest.raises(PipelineDefinitionError) as info:
        whole.dag()
    assert "pick one" in str(info.value) and "halves.train" in str(info.value)


def test_wiring_problems_are_all_listed_with_step_locations() -> None:
    @pipeline
    def broken(x: int = 1):
        a = add(x)  # missing y
        b = inc(x, 2, 3)  # too many
        return add(a, b, z=1)  # unknown keyword

    with pytest.raises(PipelineDefinitionError) as info:
        broken.dag()
    message = str(info.value)
    assert message.startswith("3 problems found:")
    assert "'y'" in message and "'z'" in message and "too many" in message
    assert add.spec.location in message and inc.spec.location in message
    assert "'add_2'" in message  # the second use of add is named as in the DAG


def test_output_used_as_a_bool_in_the_body_is_a_definition_error() -> None:
    @pipeline
    def branches(n: int = 3):
        data = load(n)
        if data:
            return describe(data)
        return split(data)

    with pytest.raises(PipelineDefinitionError) as info:
        branches.dag()
    assert "'load'" in str(info.value) and "move this logic into a step" in str(info.value)


def test_iterating_a_single_output_is_a_definition_error() -> None:
    @pipeline
    def loop(n: int = 3):
        for row in load(n):
            inc(row)

    with pytest.raises(PipelineDefinitionError):
        loop.dag()


def test_empty_body_and_star_params_are_definition_errors() -> None:
    @pipeline
    def nothing(n: int = 1):
        return n

    with pytest.raises(PipelineDefinitionError, match="called no steps"):
        nothing.dag()
    with pytest.raises(PipelineDefinitionError, match=r"\*args/\*\*kwargs"):
        pipeline(lambda **kw: None)


def test_output_from_another_pipeline_is_a_definition_error() -> None:
    leaked = []

    @pipeline
    def first(n: int = 1):
        out = inc(n)
        leaked.append(out)
        return out

    first.dag()

    @pipeline
    def second(n: int = 1):
        return add(leaked[0], n)

    with pytest.raises(PipelineDefinitionError, match="not part of this pipeline"):
        second.dag()


def test_evaluate_step_reference_is_kept() -> None:
    assert train.dag().node("evaluate").step is evaluate
    assert train.name == "train" and "train" in repr(train)
