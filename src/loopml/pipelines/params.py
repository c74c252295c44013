"""Pipeline parameters from the command line (``-p alpha=0.5``), typed from the signature."""

from __future__ import annotations

import inspect
import json
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
        example = {
            "bool": "true or false",
            "int": "an integer such as 3",
            "float": "a number such as 0.5",
            "list": "a JSON list such as [1, 2]",
            "dict": 'a JSON object such as {"a": 1}',
        }.get(kind, kind)
        raise InvalidParameterError(
            f"Parameter {name!r}: got {raw!r}; expected {example}."
        ) from None


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
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"{item!r} is not KEY=VALUE (e.g. -p alpha=0.5)")
            continue
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
