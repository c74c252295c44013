"""The expectations a table must meet, and the TOML file users read and edit.

A :class:`Schema` is a plain value: a :class:`TableSchema` (column set and order policy,
row-count range, key columns) and one :class:`ColumnSchema` per column (dtype, allowed
share of missing values, numeric range, allowed categories). Each expectation has a
severity, ``"error"`` or ``"warn"``.

The file is written by hand here because Python reads TOML (``tomllib``) but cannot
write it. The writer is small on purpose: every key is quoted, every string escaped,
every float written with ``repr`` (shortest text that reads back to the same float), so
``Schema.from_toml(schema.to_toml()) == schema`` for any column name or value. Reading
checks every key and type and names the file, the TOML path, the value and the fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.errors import InvalidParameterError, did_you_mean

DTYPES = ("integer", "float", "boolean", "string", "date", "timestamp", "other", "null")
SEVERITIES = ("error", "warn")
COLUMN_POLICIES = ("exact", "subset", "superset")
TABLE_EXPECTATIONS = ("columns", "order", "rows", "key")
COLUMN_EXPECTATIONS = ("dtype", "missing", "range", "categories")
_TABLE_KEYS = ("columns", "order", "rows", "key", "severity")
_COLUMN_KEYS = ("dtype", "max_missing", "min", "max", "categories", "severity")

Number = int | float
Category = str | int | float | bool


def _default_severity() -> dict[str, str]:
    return {"default": "error"}


@dataclass(frozen=True)
class TableSchema:
    """Expectations on the table as a whole.

    Args:
        columns: ``"exact"`` (the same columns), ``"subset"`` (no column outside the
            schema; some may be absent) or ``"superset"`` (every schema column; extra
            columns allowed).
        order: whether the columns the data shares with the schema come in schema order.
        min_rows / max_rows: the row-count range, either end ``None`` for unbounded.
        key: columns whose values, taken together, must be unique (empty: no key).
        severity: ``{"default": level, <expectation>: level}`` with levels ``"error"`` or
            ``"warn"``; expectations are ``columns``, ``order``, ``rows``, ``key``.
    """

    columns: str = "exact"
    order: bool = True
    min_rows: int | None = 1
    max_rows: int | None = None
    key: tuple[str, ...] = ()
    severity: dict[str, str] = field(default_factory=_default_severity)

    def level(self, expectation: str) -> str:
        return self.severity.get(expectation, self.severity.get("default", "error"))


@dataclass(frozen=True)
class ColumnSchema:
    """Expectations on one column.

    Args:
        name: the column name, exactly as in the data.
        dtype: one of ``integer``, ``float``, ``boolean``, ``string``, ``date``,
            ``timestamp``, ``other``. Integers pass as ``float``; floats pass as
            ``integer`` when every value is whole (pandas stores integers with gaps so).
        max_missing: the largest allowed share of missing values (null or NaN), 0 to 1.
        min / max: the allowed numeric range, either end ``None`` for unbounded.
        categories: the allowed values, or ``None`` for any.
        severity: as in :class:`TableSchema`; expectations are ``dtype``, ``missing``,
            ``range``, ``categories``.
    """

    name: str
    dtype: str
    max_missing: float = 0.0
    min: Number | None = None
    max: Number | None = None
    categories: tuple[Category, ...] | None = None
    severity: dict[str, str] = field(default_factory=_default_severity)

    def level(self, expectation: str) -> str:
        return self.severity.get(expectation, self.severity.get("default", "error"))


@dataclass(frozen=True)
class Schema:
    """A table's expectations: :class:`TableSchema` plus one :class:`ColumnSchema` per column.

    Example:
        >>> s = Schema(columns=(ColumnSchema("age", "integer", min=0, max=120),))
        >>> Schema.from_toml(s.to_toml()) == s
        True
    """

    table: TableSchema = field(default_factory=TableSchema)
    columns: tuple[ColumnSchema, ...] = ()

    def column(self, name: str) -> ColumnSchema:
        for col in self.columns:
            if col.name == name:
                return col
        raise InvalidParameterError(
            f"Column {name!r}: not in the schema; expected one of "
            f"{[c.name for c in self.columns]}.{did_you_mean(name, [c.name for c in self.columns])}"
        )

    def to_toml(self, *, reference_rows: int | None = None) -> str:
        """The schema as a commented TOML file that :meth:`from_toml` reads back unchanged."""
        return _write(self, reference_rows)

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<schema>") -> Schema:
        """Parse a schema file's text; ``source`` names the file in error messages.

        Raises:
            InvalidParameterError: the text is not TOML, or a key or value is wrong.
        """
        import tomllib

        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidParameterError(
                f"Schema file {source}: not valid TOML ({exc}). Fix the syntax, or write a "
                "new file with `infer_schema(reference).save(path)`."
            ) from exc
        return _parse(doc, source)

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read a schema file written by :meth:`save` (and perhaps edited since)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise InvalidParameterError(
                f"Schema file {str(p)!r}: does not exist. Check the path, or write one with "
                "`infer_schema(reference).save(path)`."
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidParameterError(
                f"Schema file {str(p)!r}: cannot be read ({exc}); expected a UTF-8 TOML file."
            ) from exc
        return cls.from_toml(text, source=repr(str(p)))

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.to_toml(), encoding="utf-8")
        return p


# -- writing --------------------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    """A key bare when TOML allows it (``min``), quoted otherwise (``"a.b"``)."""
    return key if _BARE.fullmatch(key) else toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # shortest text that reads back to the same float
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {value!r}")


def _severity(value: dict[str, str]) -> str:
    if set(value) == {"default"}:
        return toml_value(value["default"])
    return toml_value(value)


def _write(schema: Schema, reference_rows: int | None) -> str:
    t = schema.table
    lines = [
        "# Expectations for a table, checked by loopml.data.validate.validate().",
        '# Edit freely: every field is explained beside it. Severity is "error" (fails the',
        '# check) or "warn" (reported only), for all expectations of a section or per',
        '# expectation, e.g. severity = { default = "error", range = "warn" }.',
        "",
        "[table]",
        '# "exact": the same columns; "superset": extra columns allowed; "subset": schema',
        "# columns may be absent, but no others may appear",
        f"columns = {toml_value(t.columns)}",
        "# whether shared columns must come in the order listed below",
        f"order = {toml_value(t.order)}",
    ]
    rows = {k: v for k, v in (("min", t.min_rows), ("max", t.max_rows)) if v is not None}
    seen = f" (the reference had {reference_rows:,})" if reference_rows is not None else ""
    lines += [
        f"# allowed row count{seen}; drop min or max for no bound",
        f"rows = {toml_value(rows)}",
    ]
    lines += [
        "# columns whose values together must be unique in every row",
        f"key = {toml_value(list(t.key))}",
    ]
    lines += [
        "# table expectations: columns, order, rows, key",
        f"severity = {_severity(t.severity)}",
    ]
    for col in schema.columns:
        lines += ["", f"[columns.{toml_string(col.name)}]"]
        lines += [f"dtype = {toml_value(col.dtype)}  # {', '.join(DTYPES)}"]
        lines += [
            f"max_missing = {toml_value(col.max_missing)}  # largest share of null/NaN, 0 to 1"
        ]
        if col.min is not None:
            lines.append(f"min = {toml_value(col.min)}  # reference minimum less the tolerance")
        if col.max is not None:
            lines.append(f"max = {toml_value(col.max)}  # reference maximum plus the tolerance")
        if col.categories is not None:
            lines.append("# allowed values seen in the reference; add new ones here")
            lines.append(f"categories = {toml_value(list(col.categories))}")
        lines.append(f"severity = {_severity(col.severity)}  # dtype, missing, range, categories")
    return "\n".join(lines) + "\n"


# -- reading --------------------------------------------------------------------------------


class _Reader:
    """Checks one parsed document, naming the file and TOML path of any mistake."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, value: Any, rule: str, fix: str = "") -> InvalidParameterError:
        return InvalidParameterError(
            f"Schema file {self.source}: {path}: got {value!r}; expected {rule}.{fix}"
        )

    def keys(self, path: str, doc: Mapping[str, Any], allowed: Sequence[str]) -> None:
        for key in doc:
            if key not in allowed:
                raise self.fail(
                    f"{path} {toml_string(key) if path else key}",
                    doc[key],
                    f"one of the keys {list(allowed)}",
                    did_you_mean(key, allowed) or " Remove the key.",
                )

    def table(self, path: str, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, value, "a table")
        return value

    def number(
        self, path: str, value: Any, *, low: float | None = None, high: float | None = None
    ) -> Number:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, value, "a number", " Write it without quotes, e.g. 0.5.")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(path, value, f"a number from {low} to {high}")
        return value

    def count(self, path: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(path, value, "a whole number of rows, 0 or more")
        return value

    def choice(self, path: str, value: Any, choices: Sequence[str]) -> str:
        if not isinstance(value, str) or value not in choices:
            hint = did_you_mean(value, choices) if isinstance(value, str) else ""
            raise self.fail(path, value, f"one of {list(choices)}", hint)
        return value

    def severity(self, path: str, value: Any, expectations: Sequence[str]) -> dict[str, str]:
        if isinstance(value, str):
            return {"default": self.choice(path, value, SEVERITIES)}
        if not isinstance(value, dict):
            raise self.fail(path, value, 'a level ("error" or "warn") or a table of levels')
        self.keys(path, value, ["default", *expectations])
        levels = {k: self.choice(f"{path}.{k}", v, SEVERITIES) for k, v in value.items()}
        return {"default": levels.pop("default", "error"), **levels}


def _parse(doc: Mapping[str, Any], source: str) -> Schema:
    r = _Reader(source)
    r.keys("", doc, ["table", "columns"])
    raw_t = r.table("[table]", doc.get("table", {}))
    r.keys("[table]", raw_t, _TABLE_KEYS)
    rows = r.table("[table] rows", raw_t.get("rows", {}))
    r.keys("[table] rows", rows, ["min", "max"])
    key = raw_t.get("key", [])
    if not isinstance(key, list) or not all(isinstance(k, str) for k in key):
        raise r.fail("[table] key", key, "a list of column names", ' e.g. key = ["id"].')
    order = raw_t.get("order", True)
    if not isinstance(order, bool):
        raise r.fail("[table] order", order, "true or false")
    table = TableSchema(
        columns=r.choice("[table] columns", raw_t.get("columns", "exact"), COLUMN_POLICIES),
        order=order,
        min_rows=None if "min" not in rows else r.count("[table] rows.min", rows["min"]),
        max_rows=None if "max" not in rows else r.count("[table] rows.max", rows["max"]),
        key=tuple(key),
        severity=r.severity("[table] severity", raw_t.get("severity", "error"), TABLE_EXPECTATIONS),
    )
    columns = []
    for name, raw in r.table("[columns]", doc.get("columns", {})).items():
        where = f"[columns.{toml_string(name)}]"
        c = r.table(where, raw)
        r.keys(where, c, _COLUMN_KEYS)
        if "dtype" not in c:
            raise r.fail(f"{where} dtype", None, f"one of {list(DTYPES)}", " Add a dtype line.")
        cats = c.get("categories")
        if cats is not None and (
            not isinstance(cats, list) or not all(isinstance(v, str | int | float) for v in cats)
        ):
            raise r.fail(f"{where} categories", cats, "a list of values")
        columns.append(
            ColumnSchema(
                name=name,
                dtype=r.choice(f"{where} dtype", c["dtype"], DTYPES),
                max_missing=float(
                    r.number(f"{where} max_missing", c.get("max_missing", 0.0), low=0, high=1)
                ),
                min=None if "min" not in c else r.number(f"{where} min", c["min"]),
                max=None if "max" not in c else r.number(f"{where} max", c["max"]),
                categories=None if cats is None else tuple(cats),
                severity=r.severity(
                    f"{where} severity", c.get("severity", "error"), COLUMN_EXPECTATIONS
                ),
            )
        )
    names = {c.name for c in columns}
    for k in table.key:
        if k not in names:
            raise r.fail(
                "[table] key", k, f"a column of the schema {sorted(names)}", did_you_mean(k, names)
            )
    return Schema(table=table, columns=tuple(columns))
