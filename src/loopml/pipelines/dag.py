"""The DAG a ``@pipeline`` body builds: immutable nodes wired by step outputs.

Building collects every problem (missing inputs, bad arguments, placeholders used as
values) and raises them together, each with the step's ``file:line``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import NotFoundError, PipelineDefinitionError, did_you_mean
from loopml.pipelines.step import MultiOutput, StepOutput

if TYPE_CHECKING:
    from loopml.pipelines.step import Step

_builder: contextvars.ContextVar[DagBuilder | None] = contextvars.ContextVar(
    "loopml_dag_builder", default=None
)


def current_builder() -> DagBuilder | None:
    """The DAG being built by the innermost running ``@pipeline`` body, if any."""
    return _builder.get()


@dataclass(frozen=True, slots=True)
class Node:
    """One step call in a pipeline: its name, the step, and where each argument comes from.

    ``inputs`` maps a parameter to an upstream output; ``constants`` maps a parameter to
    a plain value (hashed into the cache key).
    """

    name: str
    step: Step
    inputs: tuple[tuple[str, StepOutput], ...]
    constants: tuple[tuple[str, Any], ...]

    @property
    def upstream(self) -> frozenset[str]:
        return frozenset(ref.node for _, ref in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...] | None:
        return self.step.spec.outputs

    def output_refs(self) -> list[str]:
        names = self.output_names
        return [self.name] if names is None else [f"{self.name}.{n}" for n in names]


@dataclass(frozen=True, slots=True)
class Dag:
    """An immutable, topologically ordered set of nodes."""

    nodes: tuple[Node, ...]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        names = [n.name for n in self.nodes]
        raise NotFoundError(
            f"No step {name!r} in this pipeline; its steps are {names}.{did_you_mean(name, names)}"
        )

    def downstream(self, name: str) -> set[str]:
        out: set[str] = set()
        frontier = {name}
        while frontier:
            frontier = {n.name for n in self.nodes if n.upstream & frontier} - out
            out |= frontier
        return out

    def upstream_of(self, name: str) -> Dag:
        """A new DAG with ``name`` and everything it depends on."""
        keep = {name}
        for n in reversed(self.nodes):
            if n.name in keep:
                keep |= n.upstream
        return Dag(tuple(n for n in self.nodes if n.name in keep))

    def without(self, name: str) -> Dag:
        """A new DAG without ``name`` and its downstream steps."""
        self.node(name)
        drop = {name} | self.downstream(name)
        return Dag(tuple(n for n in self.nodes if n.name not in drop))

    def edges(self) -> list[tuple[str, str]]:
        return [(ref.node, n.name) for n in self.nodes for _, ref in n.inputs]

    def _repr_html_(self) -> str:
        """Notebook display: the DAG as a picture."""
        from loopml.tracking.charts import dag_svg

        return dag_svg([n.name for n in self.nodes], self.edges())


class DagBuilder:
    """Collects step calls while a pipeline body runs."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.nodes: list[Node] = []
        self.problems: list[str] = []
        self._names: dict[str, int] = {}

    def __enter__(self) -> DagBuilder:
        self._token = _builder.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _builder.reset(self._token)

    def add(
        self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepOutput | MultiOutput:
        spec = step.spec
        count = self._names.get(spec.name, 0) + 1
        self._names[spec.name] = count
        name = spec.name if count == 1 else f"{spec.name}_{count}"
        where = f"step {name!r} ({spec.location})"
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            self.problems.append(f"{where}: {exc}.")
            return self._placeholder(name, spec.outputs)
        bound.apply_defaults()
        inputs: list[tuple[str, StepOutput]] = []
        constants: list[tuple[str, Any]] = []
        known = {n.name for n in self.nodes}
        for param, value in bound.arguments.items():
            if isinstance(value, MultiOutput):
                self.problems.append(
                    f"{where}: argument {param!r} is all outputs of step {value.node!r}; pick one, e.g. "
                    f"{value.node}.{value.names[0]}."
                )
            elif isinstance(value, StepOutput):
                if value.node not in known:
                    self.problems.append(
                        f"{where}: argument {param!r} comes from step {value.node!r}, which is not part of this pipeline."
                    )
                inputs.append((param, value))
            else:
                constants.append((param, value))
        self.nodes.append(Node(name, step, tuple(inputs), tuple(constants)))
        return self._placeholder(name, spec.outputs)

    @staticmethod
    def _placeholder(name: str, outputs: tuple[str, ...] | None) -> StepOutput | MultiOutput:
        return StepOutput(name) if outputs is None else MultiOutput(name, outputs)

    def build(self) -> Dag:
        if self.problems:
            raise PipelineDefinitionError(self.problems)
        if not self.nodes:
            raise PipelineDefinitionError(
                [f"pipeline {self.pipeline!r}: its body called no steps."]
            )
        return Dag(tuple(self.nodes))  # appended in call order, which is already topological
