"""A sweep's search space: what each pipeline parameter may take, and the trials drawn from it.

Separate from ``sweep.py`` (which runs trials) so the grammar of ``-p KEY=VALUES`` and the
three strategies are tested on their own, without running anything::

    alpha=0.01,0.1,1   a list of values (typed from the pipeline's signature)
    depth=3..8         an inclusive integer range
    lr=0.001..0.1      a float interval (random and optuna only)
    lr=log:1e-4..1     a log-uniform interval
    n=100              a constant

A grid is the cartesian product of lists and ranges; ``random`` draws ``n`` trials with a
seeded ``random.Random``; ``optuna`` (in ``sweep.py``) asks Optuna's TPE sampler.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from loopml.errors import InvalidParameterError, did_you_mean
from loopml.pipelines.params import _target_type, convert

if TYPE_CHECKING:
    from loopml.pipelines.pipeline import Pipeline

MAX_GRID = 10_000
STRATEGIES = ("grid", "random", "optuna")


@dataclass(frozen=True, slots=True)
class Choice:
    """One of these values (a single value is a constant)."""

    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class IntRange:
    """An integer from ``low`` to ``high``, both included."""

    low: int
    high: int

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.high + 1))


@dataclass(frozen=True, slots=True)
class Interval:
    """A float between ``low`` and ``high``; ``log=True`` samples log-uniformly."""

    low: float
    high: float
    log: bool = False


Dimension: TypeAlias = Choice | IntRange | Interval
Space: TypeAlias = dict[str, Dimension]

_SYNTAX = (
    "a list (alpha=0.01,0.1,1), an integer range (depth=3..8), an interval "
    "(lr=0.001..0.1 or lr=log:0.0001..1) or a constant (n=100)"
)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _parse_one(key: str, raw: str, target: Any) -> Dimension:
    """One ``KEY=VALUES`` right-hand side, typed as ``target``; raises InvalidParameterError."""
    text = raw.strip()
    bad = f"Parameter {key!r}: got {raw!r}; expected {_SYNTAX}."
    log = text.lower().startswith("log:")
    if log:
        text = text[4:].strip()
    structured = target in (list, dict, tuple)  # JSON values: commas belong to the value
    if ".." in text and not structured and target is not str:
        low_text, _, high_text = text.partition("..")
        low_text, high_text = low_text.strip(), high_text.strip()
        if not low_text or not high_text:
            raise InvalidParameterError(bad)
        if target is int and not (_is_int(low_text) and _is_int(high_text)):
            raise InvalidParameterError(
                f"Parameter {key!r} is an integer: got {raw!r}; expected an integer range "
                f"such as {key}=3..8."
            )
        if _is_int(low_text) and _is_int(high_text) and not log:
            low, high = int(low_text), int(high_text)
            if low > high:
                raise InvalidParameterError(
                    f"Parameter {key!r}: got {raw!r}; the range is empty. Write it low..high, "
                    f"e.g. {key}={high}..{low}."
                )
            if target is float:
                return Interval(float(low), float(high)) if low < high else Choice((float(low),))
            return IntRange(low, high)
        if target not in (float, int):
            raise InvalidParameterError(
                f"Parameter {key!r}: got {raw!r}; an interval needs a number parameter. "
                f"Give a list instead, e.g. {key}=a,b."
            )
        lo = convert(key, low_text, float)
        hi = convert(key, high_text, float)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            raise InvalidParameterError(
                f"Parameter {key!r}: got {raw!r}; expected low..high with low < high, both finite."
            )
        if log and lo <= 0:
            raise InvalidParameterError(
                f"Parameter {key!r}: got {raw!r}; a log interval needs low > 0, "
                f"e.g. {key}=log:0.0001..1."
            )
        if target is int:  # log:1..100 on an int parameter: sample floats, round at use
            raise InvalidParameterError(
                f"Parameter {key!r} is an integer: got {raw!r}; give an integer range such "
                f"as {key}=1..100 (log intervals are for float parameters)."
            )
        return Interval(lo, hi, log=log)
    if log:
        raise InvalidParameterError(
            f"Parameter {key!r}: got {raw!r}; 'log:' goes before an interval, e.g. "
            f"{key}=log:0.0001..1."
        )
    items = [text] if structured else text.split(",")
    if any(not item.strip() for item in items) and target is not str:
        raise InvalidParameterError(
            f"Parameter {key!r}: got {raw!r}; the list has an empty value. Expected {_SYNTAX}."
        )
    values = []
    for item in items:
        values.append(item.strip() if target is str else convert(key, item, target))
    return Choice(tuple(dict.fromkeys(values)) if _hashable(values) else tuple(values))


def _hashable(values: Sequence[Any]) -> bool:
    try:
        hash(tuple(values))
    except TypeError:
        return False
    return True


def parse_space(pipeline: Pipeline, specs: Iterable[str]) -> Space:
    """Parse ``-p KEY=VALUES`` strings against the pipeline's signature.

    Every problem is reported at once, each naming the parameter, the value and the fix.

    Raises:
        InvalidParameterError: unknown parameter (with a did-you-mean), bad syntax, a
            value of the wrong type, or a parameter given twice.

    Example:
        >>> from loopml import pipeline
        >>> @pipeline
        ... def fit(alpha: float = 1.0, depth: int = 3):
        ...     pass
        >>> parse_space(fit, ["alpha=0.1,1", "depth=3..5"])
        {'alpha': Choice(values=(0.1, 1.0)), 'depth': IntRange(low=3, high=5)}
    """
    params = pipeline.signature.parameters
    hints = pipeline._hints()
    space: Space = {}
    problems: list[str] = []
    for spec in specs:
        key, sep, raw = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"{spec!r} is not KEY=VALUES; expected {_SYNTAX}.")
            continue
        if key in space:
            problems.append(f"Parameter {key!r} is given twice; give it once with every value.")
            continue
        if key not in params:
            problems.append(
                f"Pipeline {pipeline.name!r} has no parameter {key!r}; its parameters are "
                f"{list(params)}.{did_you_mean(key, params)}"
            )
            continue
        try:
            space[key] = _parse_one(key, raw, _target_type(params[key], hints))
        except InvalidParameterError as exc:
            problems.append(str(exc))
    if problems:
        raise InvalidParameterError("\n".join(problems))
    return space


def as_space(given: Mapping[str, Any]) -> Space:
    """A space from Python: Dimensions as they are, lists/tuples/ranges as choices, others constant."""
    space: Space = {}
    for key, value in given.items():
        if isinstance(value, Choice | IntRange | Interval):
            space[key] = value
        elif isinstance(value, list | tuple | range):
            if len(value) == 0:
                raise InvalidParameterError(
                    f"Parameter {key!r}: got an empty {type(value).__name__}; give at least one value."
                )
            space[key] = Choice(tuple(value))
        else:
            space[key] = Choice((value,))
    return space


def grid(space: Space) -> list[dict[str, Any]]:
    """Every combination of the space's values (the cartesian product).

    Raises:
        InvalidParameterError: an interval (a grid needs values) or more than ``MAX_GRID`` trials.
    """
    problems = [
        f"Parameter {key!r} is an interval ({_show(dim)}); a grid needs values. Give a list "
        f"({key}={_example(dim)}) or sample it: --random N / --optuna N "
        "(strategy='random' or 'optuna' in Python)."
        for key, dim in space.items()
        if isinstance(dim, Interval)
    ]
    if problems:
        raise InvalidParameterError("\n".join(problems))
    keys = list(space)
    axes = [_values(space[k]) for k in keys]
    size = math.prod(len(a) for a in axes)
    if size > MAX_GRID:
        raise InvalidParameterError(
            f"The grid has {size:,} combinations; expected at most {MAX_GRID:,}. Give fewer "
            "values, or sample the space with --random N."
        )
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes)]


def sample(space: Space, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` trials drawn at random (uniform, or log-uniform for ``log:`` intervals); the
    same seed gives the same trials."""
    rng = random.Random(seed)
    trials = []
    for _ in range(n):
        trial: dict[str, Any] = {}
        for key, dim in space.items():  # in the order given: part of what the seed fixes
            if isinstance(dim, Choice):
                trial[key] = dim.values[rng.randrange(len(dim.values))]
            elif isinstance(dim, IntRange):
                trial[key] = rng.randint(dim.low, dim.high)
            elif dim.log:
                trial[key] = math.exp(rng.uniform(math.log(dim.low), math.log(dim.high)))
            else:
                trial[key] = rng.uniform(dim.low, dim.high)
        trials.append(trial)
    return trials


def representative(space: Space) -> dict[str, Any]:
    """One point of the space (the first value of each dimension), to check params early."""
    return {
        key: dim.values[0] if isinstance(dim, Choice) else dim.low for key, dim in space.items()
    }


def _values(dim: Dimension) -> tuple[Any, ...]:
    return dim.values if isinstance(dim, Choice | IntRange) else ()


def _show(dim: Interval) -> str:
    return f"{'log:' if dim.log else ''}{dim.low:g}..{dim.high:g}"


def _example(dim: Interval) -> str:
    if dim.log:
        points = [dim.low * (dim.high / dim.low) ** (i / 2) for i in range(3)]
    else:
        points = [dim.low + (dim.high - dim.low) * i / 2 for i in range(3)]
    return ",".join(f"{p:.3g}" for p in points)
