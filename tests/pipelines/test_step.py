"""``@step``: a plain function outside pipelines, and definition errors that say where."""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import pytest

import loopml
from loopml import step
from loopml.errors import LoopmlError, PipelineDefinitionError


def _scale(values: list[float], factor: float = 2.0, *, offset: float = 0.0) -> list[float]:
    """Multiply then shift."""
    return [v * factor + offset for v in values]


scale = step(_scale)


def _where(fn: object) -> str:
    code = fn.__code__  # type: ignore[attr-defined]
    return f"{code.co_filename}:{code.co_firstlineno}"


def test_direct_call_equals_undecorated_function_and_touches_no_store(project: Path) -> None:
    assert scale([1.0, 2.0]) == _scale([1.0, 2.0]) == [2.0, 4.0]
    assert scale([1.0], 3.0, offset=1.0) == _scale([1.0], 3.0, offset=1.0) == [4.0]
    assert scale(values=[0.5]) == [1.0]
    assert not (project / ".loopml").exists()
    assert sorted(p.name for p in project.iterdir()) == ["loopml.toml"]


def test_direct_call_does_not_need_an_active_run_and_raises_like_the_function() -> None:
    @step
    def boom(x: int) -> int:
        raise KeyError(x)

    with pytest.raises(KeyError) as info:
        boom(3)
    assert info.value.args == (3,)
    with pytest.raises(TypeError):
        scale()  # type: ignore[call-arg]


def test_step_keeps_wrapped_signature_name_and_doc() -> None:
    assert scale.__wrapped__ is _scale
    assert inspect.signature(scale) == inspect.signature(_scale)
    assert scale.__name__ == "_scale"
    assert scale.__qualname__ == "_scale"
    assert scale.__doc__ == "Multiply then shift."
    assert scale.__module__ == __name__
    assert scale.spec.name == "_scale"
    assert scale.spec.location == _where(_scale)
    assert "_scale" in repr(scale)


def test_step_options_are_recorded() -> None:
    @step(name="renamed", cache=False, cpus=2, memory=1024, gpus=0.5)
    def work(x: int) -> int:
        return x

    assert work(5) == 5
    assert work.spec.name == "renamed"
    assert (work.spec.cache, work.spec.cpus, work.spec.memory, work.spec.gpus) == (
        False,
        2.0,
        1024,
        0.5,
    )


def test_step_on_a_method_still_calls_through() -> None:
    class Model:
        def __init__(self, k: int) -> None:
            self.k = k

        @step
        def times(self, x: int) -> int:
            return self.k * x

    assert Model(3).times(4) == 12


def test_step_pickles_by_value() -> None:
    clone = pickle.loads(pickle.dumps(scale))
    assert clone([2.0]) == [4.0]
    assert clone.spec == scale.spec


def test_star_args_are_a_definition_error_naming_function_and_place() -> None:
    def gather(*parts: int) -> int:
        return sum(parts)

    with pytest.raises(PipelineDefinitionError) as info:
        step(gather)
    message = str(info.value)
    assert message.startswith("1 problem found:")
    assert "gather" in message and "'parts'" in message and "*args/**kwargs" in message
    assert _where(gather) in message
    assert isinstance(info.value, TypeError) and isinstance(info.value, LoopmlError)


def test_missing_return_annotation_is_a_definition_error() -> None:
    def no_annotation(x: int):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(PipelineDefinitionError) as info:
        step(no_annotation)
    assert "no_annotation" in str(info.value)
    assert "return annotation" in str(info.value)
    assert _where(no_annotation) in str(info.value)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"cpus": -1}, "cpus=-1"),
        ({"cpus": "two"}, "cpus='two'"),
        ({"gpus": -0.5}, "gpus=-0.5"),
        ({"memory": 0}, "memory 0: expected a size above 0"),
        ({"memory": "4 lots"}, "memory '4 lots': expected a size such as '512MB'"),
        ({"timeout": "soon"}, "timeout 'soon': expected a duration such as '90s'"),
        ({"retries": -1}, "retries=-1; expected a whole number from 0 to 100"),
        ({"retries": 1.5}, "retries=1.5"),
        ({"resources": {"CPU": 2}}, "use cpus=, gpus=, memory= for those"),
        ({"resources": {"special": 0}}, "resources={'special': 0}"),
        ({"outputs": ("a", "a")}, "outputs=('a', 'a')"),
        ({"outputs": ("not an identifier",)}, "expected distinct Python identifiers"),
    ],
)
def test_bad_step_options_are_definition_errors(options: dict[str, object], fragment: str) -> None:
    def fn(x: int) -> int:
        return x

    with pytest.raises(PipelineDefinitionError) as info:
        step(**options)(fn)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert _where(fn) in str(info.value)


def test_all_definition_problems_are_listed_with_a_count() -> None:
    def messy(*args, **kwargs):  # type: ignore[no-untyped-def]
        return None

    with pytest.raises(PipelineDefinitionError) as info:
        step(cpus=-2)(messy)
    message = str(info.value)
    assert message.startswith("4 problems found:")
    assert len(info.value.problems) == 4
    for fragment in ("'args'", "'kwargs'", "return annotation", "cpus=-2"):
        assert fragment in message
    assert message.count(_where(messy)) == 4


def test_step_of_a_non_function_is_a_definition_error() -> None:
    with pytest.raises(PipelineDefinitionError, match="plain function"):
        step(len)  # type: ignore[arg-type]


def test_step_is_exported_at_top_level() -> None:
    assert loopml.step is step
    assert isinstance(scale, loopml.Step)


def test_step_resources_accept_sizes_durations_and_custom_resources() -> None:
    @step(memory="4GB", timeout="30m", retries=2, resources={"special": 1})
    def fn(x: int) -> int:
        return x

    assert fn.spec.memory == 4 * 10**9
    assert fn.spec.timeout == 1800.0
    assert fn.spec.retries == 2
    assert fn.spec.resources == (("special", 1.0),)

    @step(memory="512MiB", timeout=90)
    def other(x: int) -> int:
        return x

    assert (other.spec.memory, other.spec.timeout) == (512 * 2**20, 90.0)
