"""``@pipeline``: a function whose body wires steps. Calling it builds the DAG and runs it."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from loopml.errors import InvalidParameterError, PipelineDefinitionError, did_you_mean
from loopml.pipelines.dag import Dag, DagBuilder
from loopml.pipelines.params import coerce, parse_assignments

if TYPE_CHECKING:
    from loopml.tracking.run import Run


class Pipeline:
    """A function decorated with ``@pipeline``.

    ``pipeline(**params)`` runs it and returns the :class:`~loopml.Run`;
    ``pipeline.run(params, cache=False, workers=2)`` gives every option;
    ``pipeline.dag(**params)`` only builds the DAG.
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.signature = inspect.signature(fn)
        problems = [
            f"pipeline {self.name!r}: parameter {p.name!r} is *args/**kwargs; pipelines need named parameters."
            for p in self.signature.parameters.values()
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if problems:
            raise PipelineDefinitionError(problems)

    def bind(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Check arguments against the signature, typed like ``-p`` values, and fill defaults.

        Raises:
            InvalidParameterError: names every unknown, missing or mistyped parameter.
        """
        unknown = [k for k in kwargs if k not in self.signature.parameters]
        if unknown:
            names = list(self.signature.parameters)
            raise InvalidParameterError(
                f"Pipeline {self.name!r} has no parameter {unknown[0]!r}; its parameters are {names}."
                + did_you_mean(unknown[0], names)
            )
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidParameterError(f"Pipeline {self.name!r}: {exc}.") from None
        bound.apply_defaults()
        hints = self._hints()
        values, problems = {}, []
        for name, value in bound.arguments.items():
            try:
                values[name] = coerce(name, value, self.signature.parameters[name], hints)
            except InvalidParameterError as exc:
                problems.append(str(exc))
        if problems:
            raise InvalidParameterError(f"Pipeline {self.name!r}: " + "\n".join(problems))
        return values

    def _hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self.fn)
        except Exception:  # unresolvable annotations: fall back to defaults' types
            return {}

    def parse_params(self, assignments: list[str]) -> dict[str, Any]:
        """Type ``KEY=VALUE`` strings from the command line using this pipeline's signature."""
        hints = self._hints()
        return parse_assignments(
            self.signature, assignments, where=f"Pipeline {self.name!r}", hints=hints
        )

    def dag(self, *args: Any, **kwargs: Any) -> Dag:
        """Build the DAG for these parameters without running anything."""
        params = self.bind(*args, **kwargs)
        with DagBuilder(self.name) as builder:
            self.fn(**params)
        return builder.build()

    def run(
        self,
        params: dict[str, Any] | None = None,
        *,
        cache: bool = True,
        workers: int | None = None,
        client: Any = None,
        executor: Any = None,
        progress: Any = None,
        tags: dict[str, Any] | None = None,
    ) -> Run:
        """Run the pipeline and return the finished :class:`~loopml.Run`.

        ``executor`` is an executor object or where to run: ``"local"``, ``"ray"``,
        ``"ray://HOST:PORT"`` (default: ``[run] executor``). ``tags`` are set on the run as
        it starts.

        Raises:
            InvalidParameterError: a parameter is unknown or missing.
            PipelineDefinitionError: the body wires steps wrongly (all problems listed).
            StepFailedError: a step raised; the run is recorded as ``failed``.
        """
        from loopml.execution.runner import run_pipeline

        bound = self.bind(**(params or {}))
        dag = self.dag(**bound)
        return run_pipeline(
            self,
            dag,
            bound,
            cache=cache,
            workers=workers,
            client=client,
            executor=executor,
            progress=progress,
            tags=tags,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Run:
        return self.run(self.bind(*args, **kwargs))

    def __repr__(self) -> str:
        return f"<pipeline {self.name}{self.signature}>"


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...
@overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Make a function a pipeline: its body calls steps, its parameters are the run's params.

    Example:
        >>> from loopml import pipeline, step
        >>> @step
        ... def double(x: int) -> int:
        ...     return 2 * x
        >>> @pipeline
        ... def twice(x: int = 2):
        ...     return double(double(x))
        >>> [n.name for n in twice.dag(x=3)]
        ['double', 'double_2']
    """
    if fn is not None:
        return Pipeline(fn, name)
    return lambda f: Pipeline(f, name)
