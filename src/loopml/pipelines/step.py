"""``@step``: a plain function plus a frozen :class:`StepSpec`.

Outside a ``@pipeline`` body a step *is* its function: same signature, same result, no
I/O, no tracking. Inside a pipeline body it returns a placeholder (:class:`StepOutput`)
that wires the DAG. Everything else (caching, resources, tracking) is read from the spec
by ``execution/``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from loopml.errors import InvalidParameterError, PipelineDefinitionError
from loopml.store.models import check_model_name

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class StepSpec:
    """What ``@step`` records about a function; read by the executor."""

    name: str
    qualname: str
    module: str
    outputs: tuple[str, ...] | None  # None: one unnamed output
    cache: bool = True
    cpus: float = 1.0
    memory: int | None = None  # bytes
    gpus: float = 0.0
    file: str = ""
    line: int = 0
    register: str | None = None  # the model its output is registered as, after each run

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class StepOutput:
    """A placeholder for a step's output inside a pipeline body.

    ``node`` is the step's name in the pipeline; ``output`` names one of several outputs.
    """

    node: str
    output: str | None = None

    @property
    def ref(self) -> str:
        """How users refer to it: ``STEP`` or ``STEP.NAME``."""
        return self.node if self.output is None else f"{self.node}.{self.output}"

    def __bool__(self) -> bool:
        raise PipelineDefinitionError(
            [
                f"The output of step {self.ref!r} was used as a value inside a @pipeline body. "
                "Inside a pipeline, step calls return placeholders that are filled in when the "
                "pipeline runs; move this logic into a step."
            ]
        )

    def __iter__(self) -> Iterator[Any]:
        self.__bool__()
        return iter(())

    def _compare(self, other: object) -> bool:
        return self.__bool__()

    __lt__ = __le__ = __gt__ = __ge__ = _compare


@dataclass(frozen=True, slots=True)
class MultiOutput:
    """The placeholders of a step with named outputs: ``out.train``, ``out["train"]``, unpacking."""

    node: str
    names: tuple[str, ...]
    _outputs: tuple[StepOutput, ...] = field(default=())

    def __getattr__(self, name: str) -> StepOutput:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, key: str | int) -> StepOutput:
        if isinstance(key, int):
            return StepOutput(self.node, self.names[key])
        if key not in self.names:
            raise PipelineDefinitionError(
                [f"Step {self.node!r} has no output {key!r}; its outputs are {list(self.names)}."]
            )
        return StepOutput(self.node, key)

    def __iter__(self) -> Iterator[StepOutput]:
        return (StepOutput(self.node, n) for n in self.names)

    def __len__(self) -> int:
        return len(self.names)


class Step:
    """A function decorated with ``@step``. Call it to run the function; inside a
    ``@pipeline`` body, calling it adds a node to the DAG instead."""

    def __init__(self, fn: Callable[..., Any], spec: StepSpec) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.spec = spec
        self.signature = inspect.signature(fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from loopml.pipelines.dag import current_builder

        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self.__call__, obj)

    def __repr__(self) -> str:
        return f"<step {self.spec.name} at {self.spec.location}>"

    def __reduce__(self) -> Any:
        # A decorated module-level step is its module's attribute: pickle it by reference, as
        # pickle does functions. Otherwise (a notebook, a local function) ship the function
        # itself; executors in other processes use cloudpickle, which pickles it by value.
        module = sys.modules.get(self.spec.module)
        target: Any = module
        for part in self.spec.qualname.split("."):
            target = getattr(target, part, None)
        if target is self and self.spec.module != "__main__":
            return (_step_by_reference, (self.spec.module, self.spec.qualname))
        return (Step, (self.fn, self.spec))


def _step_by_reference(module: str, qualname: str) -> Step:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, Step):
        raise TypeError(f"{module}.{qualname} is not a @step in this process.")
    return target


def _outputs_of(
    fn: Callable[..., Any],
    outputs: tuple[str, ...] | list[str] | None,
    problems: list[str],
    where: str,
) -> tuple[str, ...] | None:
    if outputs is not None:
        names = tuple(outputs)
        if (
            not names
            or not all(isinstance(n, str) and n.isidentifier() for n in names)
            or len(set(names)) != len(names)
        ):
            problems.append(f"{where}: outputs={outputs!r}; expected distinct Python identifiers.")
        return names
    ret = inspect.signature(fn).return_annotation
    if isinstance(ret, str):
        try:
            ret = typing.get_type_hints(fn).get("return")
        except Exception:  # an annotation naming something undefined: treat as one output
            return None
    fields = getattr(ret, "_fields", None)
    if isinstance(ret, type) and issubclass(ret, tuple) and fields:
        return tuple(fields)
    return None


def _build(
    fn: Callable[..., Any],
    *,
    name: str | None,
    outputs: Any,
    cache: bool,
    cpus: float,
    memory: int | None,
    gpus: float,
    register: str | None = None,
) -> Step:
    code = getattr(fn, "__code__", None)
    file = code.co_filename if code else "?"
    line = code.co_firstlineno if code else 0
    where = f"step {getattr(fn, '__qualname__', fn)!r} ({file}:{line})"
    problems: list[str] = []
    if not callable(fn) or code is None:
        raise PipelineDefinitionError([f"@step needs a plain function, got {fn!r}."])
    sig = inspect.signature(fn)
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            problems.append(
                f"{where}: parameter {p.name!r} is *args/**kwargs; steps need explicit parameters (they are the step's inputs)."
            )
    if sig.return_annotation is inspect.Signature.empty:
        problems.append(
            f"{where}: missing a return annotation; add one (e.g. '-> pd.DataFrame'), it is the step's output type."
        )
    for label, value in (("cpus", cpus), ("gpus", gpus)):
        if not isinstance(value, int | float) or value < 0:
            problems.append(f"{where}: {label}={value!r}; expected a number >= 0.")
    if memory is not None and (not isinstance(memory, int) or memory <= 0):
        problems.append(f"{where}: memory={memory!r}; expected a positive number of bytes.")
    names = _outputs_of(fn, outputs, problems, where)
    if register is not None:
        try:
            check_model_name(register)
        except InvalidParameterError as exc:
            problems.append(f"{where}: register: {exc}")
        if names is not None:
            problems.append(
                f"{where}: register={register!r} needs a step with one output (the model); "
                f"this one has {len(names)}: {', '.join(names)}."
            )
    if problems:
        raise PipelineDefinitionError(problems)
    spec = StepSpec(
        name=name or fn.__name__,
        qualname=fn.__qualname__,
        module=fn.__module__,
        outputs=names,
        cache=cache,
        cpus=float(cpus),
        memory=memory,
        gpus=float(gpus),
        file=file,
        line=line,
        register=register,
    )
    return Step(fn, spec)


@overload
def step(fn: F, /) -> Step: ...
@overload
def step(
    *,
    name: str | None = None,
    outputs: tuple[str, ...] | list[str] | None = None,
    cache: bool = True,
    cpus: float = 1.0,
    memory: int | None = None,
    gpus: float = 0.0,
    register: str | None = None,
) -> Callable[[F], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    outputs: tuple[str, ...] | list[str] | None = None,
    cache: bool = True,
    cpus: float = 1.0,
    memory: int | None = None,
    gpus: float = 0.0,
    register: str | None = None,
) -> Any:
    """Make a function a pipeline step.

    Args:
        name: the step's name in pipelines (default: the function's name).
        outputs: names of several outputs, for a step returning a tuple; a ``NamedTuple``
            return annotation names them too.
        cache: reuse stored outputs when code, parameters and inputs are unchanged.
        cpus, memory, gpus: resources the step needs (used for scheduling and cost).
        register: a model name: when a pipeline run of the step succeeds, its output is
            registered as the next version of that model (the same artifact again is the
            same version), with the run's metrics and data (see ``loopml.register``).

    Example:
        >>> from loopml import step
        >>> @step
        ... def double(x: int) -> int:
        ...     return 2 * x
        >>> double(21)
        42
    """

    def wrap(f: Callable[..., Any]) -> Step:
        return _build(
            f,
            name=name,
            outputs=outputs,
            cache=cache,
            cpus=cpus,
            memory=memory,
            gpus=gpus,
            register=register,
        )

    return wrap(fn) if fn is not None else wrap
