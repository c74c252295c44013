"""Materializers for plain Python values: bytes, text, and JSON-able data.

JSON is written canonically (sorted keys, compact separators, UTF-8), so equal values
give equal bytes and therefore equal digests. A value is JSON-able only if it survives
the round trip: exact dict/list/tuple/str/int/float/bool/None, dict keys all str. A
subclass such as a namedtuple or an IntEnum would come back as a plain list or int, so
it is refused here and the lookup moves on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loopml.errors import MaterializerError

_SCALARS = (str, int, float, bool, type(None))
_CONTAINERS = (dict, list, tuple)
_MAX_DEPTH = 500
_KINDS = {
    dict: "dict",
    list: "list",
    tuple: "tuple",
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
}


class BytesMaterializer:
    """``bytes``/``bytearray`` → the same bytes in the blob."""

    name = "bytes"
    extension = ".bin"

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        with open(path, "wb") as f:
            f.write(value)
        return {}

    def load(self, path: Path, metadata: dict[str, Any]) -> bytes:
        return path.read_bytes()


class TextMaterializer:
    """``str`` → its UTF-8 bytes."""

    name = "text"
    extension = ".txt"

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MaterializerError(
                f"Cannot store this str as UTF-8 text: {exc.reason} at index {exc.start} "
                f"({value[exc.start : exc.end]!r}). Remove lone surrogates, or store "
                "value.encode('utf-8', 'surrogatepass') as bytes."
            ) from exc
        with open(path, "wb") as f:
            f.write(data)
        return {"chars": len(value)}

    def load(self, path: Path, metadata: dict[str, Any]) -> str:
        return path.read_bytes().decode("utf-8")


def json_problem(value: Any) -> str | None:
    """Return why ``value`` is not JSON-able (naming where), or None if it is."""
    stack: list[tuple[Any, str, int]] = [(value, "value", 0)]
    while stack:
        item, where, depth = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind not in _CONTAINERS:
            return f"{where} is a {kind.__module__}.{kind.__qualname__}, which JSON cannot hold"
        if depth >= _MAX_DEPTH:
            return f"{where} is nested more than {_MAX_DEPTH} levels deep"
        if kind is dict:
            for key, sub in item.items():
                if type(key) is not str:
                    return f"{where} has the key {key!r} of type {type(key).__name__}; JSON keys must be str"
                stack.append((sub, f"{where}[{key!r}]", depth + 1))
        else:
            stack.extend((sub, f"{where}[{i}]", depth + 1) for i, sub in enumerate(item))
    return None


class JsonMaterializer:
    """JSON-able values → canonical JSON; a top-level tuple comes back as a tuple."""

    name = "json"
    extension = ".json"

    def problem(self, value: Any) -> str | None:
        return json_problem(value)

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        try:
            data = json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
        except (TypeError, ValueError, UnicodeEncodeError) as exc:
            raise MaterializerError(
                f"Cannot store this value as JSON: {exc}. Store JSON-able data only "
                "(str keys; str/int/float/bool/None/list/dict values)."
            ) from exc
        with open(path, "wb") as f:
            f.write(data)
        return {"kind": _KINDS.get(type(value), "null")}

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        value = json.loads(path.read_bytes())
        # JSON has no tuples; the metadata remembers that the top level was one.
        return tuple(value) if metadata.get("kind") == "tuple" else value
