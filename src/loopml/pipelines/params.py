"""Pipeline parameters, typed from the signature: from the command line (``-p alpha=0.5``)
and from Python (``train(alpha="0.5")``) alike, so both give the same values and the same
cache keys."""

from __future__ import annotations

import inspect
import json
import numbers
import typing
from pathlib import Path
from typing import Any

from loopml.errors import InvalidParameterError, did_you_mean

_TRUE = {"true", "1", "yes", "on", "y"}
_FALSE = {"false", "0", "no", "off", "n"}


def _target_type(param: inspect.Parameter, hints: dict[str, Any]) -> Any:
    ann = hints.get(param.name, param.annotation)
    if ann is inspect.Parameter.empty:
        if param.default is not inspect.Parameter.empty and param.default is not None:
            return type(param.default)
        return str
    origin = typing.get_origin(ann)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return (typing.get_origin(args[0]) or args[0]) if len(args) == 1 else str
    return origin or ann


def convert(name: str, raw: str, target: Any) -> Any:
    """Convert one command-line string to ``target``; raises InvalidParameterError."""
    text = raw.strip()
    try:
        if target is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        if target is int:
            return int(text)
        if target is float:
            return float(text)
        if target is Path:
            return Path(text)
        if target in (list, dict, tuple):
            value = json.loads(text)
            if not isinstance(value, list if target is not dict else dict):
                raise ValueError
            return tuple(value) if target is tuple else value
        if text.lower() in ("none", "null") and target is not str:
            return None
        return raw
    except ValueError:
        kind = getattr(target, "__name__", str(target))
        example = _KINDS.get(kind, kind)
        raise InvalidParameterError(
            f"Parameter {name!r}: got {raw!r}; expected {example}."
        ) from None


_KINDS = {
    "bool": "true or false",
    "int": "an integer such as 3",
    "float": "a number such as 0.5",
    "list": "a JSON list such as [1, 2]",
    "dict": 'a JSON object such as {"a": 1}',
    "tuple": "a list such as [1, 2]",
    "Path": "a path",
}


def coerce(name: str, value: Any, param: inspect.Parameter, hints: dict[str, Any]) -> Any:
    """Check (and convert) a value given from Python the way ``-p`` values are.

    Strings are parsed like command-line text; ints become floats for ``float``
    parameters (so ``alpha=1`` and ``-p alpha=1`` share a cache key) and numpy scalars
    become Python ``int``/``float`` (so ``n=np.int64(3)`` is ``n=3``); a value of the wrong
    kind is refused. Annotations other than bool/int/float/str/Path/list/dict/tuple are
    not checked.
    """
    annotation = hints.get(param.name, param.annotation)
    if value is None and (
        param.default is None or type(None) in typing.get_args(annotation) or annotation is None
    ):
        return None
    target = _target_type(param, hints)
    if (
        isinstance(value, str)
        and target is not str
        and target in (bool, int, float, Path, list, dict, tuple)
    ):
        return convert(name, value, target)
    ok = {
        bool: lambda v: isinstance(v, bool) or type(v).__name__ == "bool_",  # numpy's bool
        # numbers.* accepts numpy scalars (np.int64 from np.arange), converted below
        int: lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
        float: lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        Path: lambda v: isinstance(v, str | Path),
        list: lambda v: isinstance(v, list),
        dict: lambda v: isinstance(v, dict),
        tuple: lambda v: isinstance(v, tuple | list),
    }.get(target)
    if (
        ok is None
        or annotation is inspect.Parameter.empty
        and param.default is inspect.Parameter.empty
    ):
        return value
    if not ok(value):
        kind = getattr(target, "__name__", str(target))
        raise InvalidParameterError(
            f"Parameter {name!r}: got {value!r} of type {type(value).__name__}; expected "
            f"{_KINDS.get(kind, kind)}."
        )
    if target is float:
        return float(value)
    if target is int:
        return int(value)
    if target is bool:
        return bool(value)
    if target is Path:
        return Path(value)
    if target is tuple:
        return tuple(value)
    return value


def parse_assignments(
    signature: inspect.Signature,
    assignments: list[str],
    *,
    where: str,
    hints: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Parse ``["alpha=0.5", "name=x"]`` against a pipeline signature.

    Every problem is reported at once; nothing runs when any value is bad.
    """
    params = signature.parameters
    values: dict[str, Any] = {}
    problems: list[str] = []
    given: dict[str, str] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"{item!r} is not KEY=VALUE (e.g. -p alpha=0.5)")
            continue
        if key in given:
            problems.append(
                f"parameter {key!r} is given twice ({key}={given[key]} and {key}={raw}); "
                "give it once"
            )
            continue
        given[key] = raw
        if key not in params:
            problems.append(
                f"{where} has no parameter {key!r}; its parameters are {list(params)}.{did_you_mean(key, params)}"
            )
            continue
        annotation = (hints or {}).get(key, params[key].annotation)
        if raw.strip().lower() in ("none", "null") and type(None) in typing.get_args(annotation):
            values[key] = None
            continue
        try:
            values[key] = convert(key, raw, _target_type(params[key], hints or {}))
        except InvalidParameterError as exc:
            problems.append(str(exc))
    if problems:
        raise InvalidParameterError("\n".join(problems))
    return values
