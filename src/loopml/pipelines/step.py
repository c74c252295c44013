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

from loopml.config import parse_duration, parse_size
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
    retries: int = 0  # further attempts after a failure (an error, a lost worker, a timeout)
    timeout: float | None = None  # seconds an attempt may take
    resources: tuple[tuple[str, float], ...] = ()  # custom cluster resources, e.g. ("special", 1)

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
    memory: int | str | None,
    gpus: float,
    register: str | None = None,
    retries: int = 0,
    timeout: float | str | None = None,
    resources: dict[str, float] | None = None,
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
    memory_bytes = timeout_s = None
    try:
        memory_bytes = parse_size(memory, what=f"{where}: memory")
    except InvalidParameterError as exc:
        problems.append(str(exc))
    try:
        timeout_s = parse_duration(timeout, what=f"{where}: timeout")
    except InvalidParameterError as exc:
        problems.append(str(exc))
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 100:
        problems.append(f"{where}: retries={retries!r}; expected a whole number from 0 to 100.")
    custom = dict(resources or {})
    for key, amount in custom.items():
        if (
            not isinstance(key, str)
            or not key
            or key in ("CPU", "GPU", "memory")
            or not isinstance(amount, int | float)
            or isinstance(amount, bool)
            or amount <= 0
        ):
            problems.append(
                f"{where}: resources={{{key!r}: {amount!r}}}; expected names of custom "
                "resources with amounts > 0 (use cpus=, gpus=, memory= for those), "
                'e.g. resources={"special": 1}.'
            )
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
        memory=memory_bytes,
        gpus=float(gpus),
        file=file,
        line=line,
        register=register,
        retries=retries,
        timeout=timeout_s,
        resources=tuple(sorted((k, float(v)) for k, v in custom.items())),
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
    memory: int | str | None = None,
    gpus: float = 0.0,
    register: str | None = None,
    retries: int = 0,
    timeout: float | str | None = None,
    resources: dict[str, float] | None = None,
) -> Callable[[F], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    outputs: tuple[str, ...] | list[str] | None = None,
    cache: bool = True,
    cpus: float = 1.0,
    memory: int | str | None = None,
    gpus: float = 0.0,
    register: str | None = None,
    retries: int = 0,
    timeout: float | str | None = None,
    resources: dict[str, float] | None = None,
) -> Any:
    """Make a function a pipeline step.

    Args:
        name: the step's name in pipelines (default: the function's name).
        outputs: names of several outputs, for a step returning a tuple; a ``NamedTuple``
            return annotation names them too.
        cache: reuse stored outputs when code, parameters and inputs are unchanged.
        cpus, memory, gpus: resources the step needs: a cluster executor (Ray) reserves
            them, and the run's cost is computed from them. ``memory`` in bytes or as
            ``"4GB"``, ``"512MiB"``.
        resources: custom cluster resources the step needs, e.g. ``{"special": 1}``: on
            Ray it runs only on a node that offers them.
        retries: start the step again up to this many times when an attempt fails (it
            raised, its worker died, or it ran past ``timeout``).
        timeout: how long one attempt may run (``"30m"``, ``"2h"`` or seconds); past it the
            attempt fails (a cluster worker is stopped; on the local executor the thread
            cannot be stopped, so it is abandoned).
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
            retries=retries,
            timeout=timeout,
            resources=resources,
        )

    return wrap(fn) if fn is not None else wrap
