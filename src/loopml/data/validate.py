"""Infer expectations from a reference table, and check new data against them.

``infer_schema(reference)`` reads the column set, dtypes, missing values, numeric ranges
(widened by a tolerance), small sets of categories and the row count; ``validate(data,
schema)`` checks a table against a :class:`~loopml.data.schema.Schema` and returns a
:class:`~loopml.data.validate_report.ValidationReport`, raising
:class:`~loopml.data.errors.ValidationError` when an expectation of severity ``"error"``
fails.

Every check is a pyarrow.compute kernel over a whole column. Counts and example rows come
from a boolean mask of the offending rows, which is only built once a cheap summary
(null count, min/max, distinct count) shows there is something to report; no Python loop
runs over rows. pyarrow is imported inside the functions so importing this module costs
nothing.
"""

from __future__ import annotations

import datetime
import decimal
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.data.errors import ValidationError
from loopml.data.schema import ColumnSchema, Schema, TableSchema
from loopml.data.validate_input import to_arrow
from loopml.data.validate_report import ValidationReport, Violation
from loopml.errors import InvalidParameterError, did_you_mean

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Schema", "ValidationReport", "Violation", "infer_schema", "validate"]

logger = logging.getLogger(__name__)

EXAMPLES = 5
_ROW = "__loopml_row__"


def infer_schema(
    reference: Any,
    *,
    tolerance: float = 0.1,
    max_categories: int = 50,
    key: str | Sequence[str] | None = None,
) -> Schema:
    """Expectations that ``reference`` meets, loose enough for new data like it.

    Args:
        reference: a pandas or polars DataFrame, a pyarrow Table, or a .csv/.parquet path.
        tolerance: numeric ranges are widened by this share of the reference range on each
            side (0.1: a column seen in [0, 100] may hold [-10, 110]); the allowed share of
            missing values grows by the same factor.
        max_categories: a string column with at most this many distinct values gets them
            as its allowed categories; 0 turns categories off.
        key: a column, or columns, whose values must be unique; checked on the reference.

    Returns:
        A :class:`Schema`; ``.save(path)`` writes it as an editable TOML file.

    Raises:
        InvalidParameterError: a bad argument, or a key that is not unique in the reference.

    Example:
        >>> import pyarrow as pa
        >>> s = infer_schema(pa.table({"age": [20, 30, 40]}), tolerance=0.5)
        >>> (s.column("age").min, s.column("age").max)
        (10, 50)
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not tolerance >= 0:
        raise InvalidParameterError(
            f"infer_schema tolerance: got {tolerance!r}; expected a number >= 0, e.g. 0.1."
        )
    if (
        isinstance(max_categories, bool)
        or not isinstance(max_categories, int)
        or max_categories < 0
    ):
        raise InvalidParameterError(
            f"infer_schema max_categories: got {max_categories!r}; expected a whole number >= 0."
        )
    table = to_arrow(reference, what="reference")
    keys = _key_columns(key, table.column_names)
    columns = tuple(
        _infer_column(name, table.column(name), table.num_rows, tolerance, max_categories)
        for name in table.column_names
    )
    schema = Schema(
        table=TableSchema(min_rows=1 if table.num_rows else 0, key=keys), columns=columns
    )
    if keys:
        dupes = _check_key(table, schema.table)
        if dupes is not None:
            raise InvalidParameterError(
                f"infer_schema key {list(keys)}: got {dupes.count} reference rows sharing key "
                f"values (e.g. {dupes.observed}); expected unique values. Choose other key "
                "columns, or drop the duplicates first."
            )
    return schema


def _key_columns(key: str | Sequence[str] | None, names: list[str]) -> tuple[str, ...]:
    keys = (key,) if isinstance(key, str) else tuple(key or ())
    for k in keys:
        if k not in names:
            raise InvalidParameterError(
                f"infer_schema key: got {k!r}; expected a column of the reference "
                f"{names}.{did_you_mean(str(k), names)}"
            )
    return keys


def _infer_column(
    name: str, col: pa.ChunkedArray, rows: int, tolerance: float, max_categories: int
) -> ColumnSchema:
    import pyarrow.compute as pc

    col = _decoded(col)
    dtype = logical_dtype(col.type)
    missing = _missing(col, dtype)
    share = (
        0.0
        if not missing
        else min(1.0, math.ceil(round(missing / rows * (1 + tolerance) * 1e4, 6)) / 1e4)
    )
    low: int | float | None = None
    high: int | float | None = None
    categories = None
    if dtype in ("integer", "float") and rows > missing:
        found = pc.min_max(col)
        lo, hi = found["min"].as_py(), found["max"].as_py()
        if dtype == "integer":  # in whole numbers: a float would lose digits past 2**53
            margin = math.ceil(tolerance * (hi - lo))
            low, high = lo - margin, hi + margin
        else:
            span = hi - lo if math.isfinite(hi - lo) else 0
            low, high = _outward(lo - tolerance * span, hi + tolerance * span, tolerance * span)
    elif dtype == "string" and max_categories:
        distinct = pc.unique(col.drop_null())
        if len(distinct) <= max_categories:
            categories = tuple(sorted(distinct.to_pylist()))
    return ColumnSchema(
        name=name, dtype=dtype, max_missing=share, min=low, max=high, categories=categories
    )


def _outward(low: float, high: float, margin: float) -> tuple[float, float]:
    """Bounds rounded outward to two significant digits of the margin, for a readable file.

    ``27.488999999999997`` becomes ``27.49``: integer / power of ten is correctly
    rounded, so the float prints as the short decimal.
    """
    if not (margin > 0 and math.isfinite(low) and math.isfinite(high)):
        return low, high
    digits = 1 - math.floor(math.log10(margin))
    try:
        if digits >= 0:
            scale = 10**digits
            lo = math.floor(round(low * scale, 6)) / scale
            hi = math.ceil(round(high * scale, 6)) / scale
        else:
            step = 10**-digits
            lo, hi = float(math.floor(low / step) * step), float(math.ceil(high / step) * step)
    except (OverflowError, ValueError):  # a margin tiny next to the values: keep them as is
        return low, high
    # float error in low * scale can round inward; never narrow the range
    return min(lo, low), max(hi, high)


# -- checking -------------------------------------------------------------------------------


def validate(
    data: Any, schema: Schema | str | Path, *, raise_on_error: bool = True
) -> ValidationReport:
    """Check ``data`` against ``schema`` and report every violation at once.

    Args:
        data: a pandas or polars DataFrame, a pyarrow Table, or a .csv/.parquet path.
        schema: a :class:`Schema`, or the path of a schema TOML file.
        raise_on_error: raise when an expectation of severity ``"error"`` fails; warnings
            are logged and returned, never raised.

    Returns:
        The :class:`ValidationReport`; ``report.ok`` is true when nothing is an error.

    Raises:
        ValidationError: some errors were found (with ``raise_on_error``); ``.report``.
        InvalidParameterError: the data or the schema cannot be read.
    """
    if isinstance(schema, str | Path):
        schema = Schema.load(schema)
    elif not isinstance(schema, Schema):
        raise InvalidParameterError(
            f"validate schema: got {type(schema).__name__}; expected a Schema or the path of "
            "a schema file. Make one with `infer_schema(reference)`."
        )
    table = to_arrow(data)
    found = _check_table(table, schema)
    for col in schema.columns:
        if col.name in table.column_names:
            found += _check_column(table, col)
    report = ValidationReport(rows=table.num_rows, violations=tuple(found))
    if report.warnings:
        logger.warning(
            "%d validation warning%s:\n%s",
            len(report.warnings),
            "s" if len(report.warnings) != 1 else "",
            "\n".join(f"  - {v.describe()}" for v in report.warnings),
        )
    if raise_on_error and not report.ok:
        raise ValidationError(report)
    return report


def _check_table(table: pa.Table, schema: Schema) -> list[Violation]:
    t = schema.table
    found: list[Violation] = []
    n = table.num_rows
    if (t.min_rows is not None and n < t.min_rows) or (t.max_rows is not None and n > t.max_rows):
        expected = {k: v for k, v in (("min", t.min_rows), ("max", t.max_rows)) if v is not None}
        found.append(Violation(None, "rows", t.level("rows"), n, expected, 0))
    have, want = table.column_names, [c.name for c in schema.columns]
    have_set, want_set = set(have), set(want)
    if t.columns in ("exact", "superset"):
        for name in want:
            if name not in have_set:
                found.append(Violation(name, "columns", t.level("columns"), "absent", "present", 0))
    if t.columns in ("exact", "subset"):
        for name in have:
            if name not in want_set:
                found.append(Violation(name, "columns", t.level("columns"), "present", "absent", 0))
    shared_have = [c for c in have if c in want_set]
    shared_want = [c for c in want if c in have_set]
    if t.order and shared_have != shared_want:
        found.append(Violation(None, "order", t.level("order"), shared_have, shared_want, 0))
    if t.key and all(k in have_set for k in t.key):
        dupes = _check_key(table, t)
        if dupes is not None:
            found.append(dupes)
    return found


def _check_key(table: pa.Table, t: TableSchema) -> Violation | None:
    import pyarrow.compute as pc

    keys = list(t.key)
    if len(keys) > 1:
        return _check_compound_key(table, t)
    arr = _decoded(table.column(keys[0]))
    dupes = _duplicated_values(arr)
    if dupes is None:
        return None
    mask = pc.is_in(arr, value_set=dupes)
    observed = [_json(v) for v in dupes[:EXAMPLES].to_pylist()]
    return Violation(
        None, "key", t.level("key"), observed, keys, _count(mask), _examples(table, _first(mask))
    )


def _duplicated_values(arr: pa.ChunkedArray) -> pa.Array | None:
    """The values found more than once, sorted; ``None`` when every value is unique.

    Whole numbers without gaps (the usual id column) are checked by sorting with numpy,
    after a test for already-increasing ids; that is several times faster than hashing.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(arr.type) and arr.null_count == 0:
        import numpy as np

        values = arr.to_numpy()
        if len(values) < 2 or bool(np.all(values[1:] > values[:-1])):
            return None
        ordered = np.sort(values)
        same = ordered[1:] == ordered[:-1]
        return pa.array(np.unique(ordered[1:][same])) if same.any() else None
    counts = pc.value_counts(arr)
    dupes = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    return pc.take(dupes, pc.sort_indices(dupes)) if len(dupes) else None


def _check_compound_key(table: pa.Table, t: TableSchema) -> Violation | None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = list(t.key)
    n = table.num_rows
    if table.select(keys).group_by(keys).aggregate([]).num_rows == n:
        return None
    row = _ROW if _ROW not in keys else _ROW + "_"
    numbered = table.select(keys).append_column(row, pa.array(np.arange(n, dtype=np.int64)))
    groups = numbered.group_by(keys).aggregate([(row, "list"), (row, "count")])
    groups = groups.filter(pc.greater(groups[f"{row}_count"], 1))
    involved = pc.list_flatten(groups[f"{row}_list"])
    first = pc.take(involved, pc.sort_indices(involved)[:EXAMPLES])
    observed = [_json(d) for d in groups.select(keys).slice(0, EXAMPLES).to_pylist()]
    return Violation(
        None, "key", t.level("key"), observed, keys, len(involved), _examples(table, first)
    )


def _check_column(table: pa.Table, col: ColumnSchema) -> list[Violation]:
    import pyarrow.compute as pc

    arr = _decoded(table.column(col.name))
    n = table.num_rows
    found: list[Violation] = []
    dtype = logical_dtype(arr.type)
    dtype_ok = (
        dtype == col.dtype or dtype == "null" or (dtype == "integer" and col.dtype == "float")
    )
    if not dtype_ok:
        if dtype == "float" and col.dtype == "integer":
            # pandas stores whole numbers with gaps as floats: only fractions break "integer"
            bad = pc.and_(pc.is_finite(arr), pc.not_equal(arr, pc.floor(arr)))
        else:
            bad = pc.is_valid(arr)
        count = _count(bad)
        if count or dtype != "float":
            found.append(
                Violation(
                    col.name,
                    "dtype",
                    col.level("dtype"),
                    _physical(arr.type, dtype),
                    col.dtype,
                    count,
                    _examples(table, _first(bad)),
                )
            )
            return found
    missing = _missing(arr, dtype)
    if missing and (col.max_missing == 0 or missing / n > col.max_missing):
        mask = pc.is_null(arr, nan_is_null=True)
        found.append(
            Violation(
                col.name,
                "missing",
                col.level("missing"),
                round(missing / n, 6),
                col.max_missing,
                missing,
                _examples(table, _first(mask)),
            )
        )
    if (col.min is not None or col.max is not None) and dtype in ("integer", "float"):
        seen = pc.min_max(arr)
        lo, hi = seen["min"].as_py(), seen["max"].as_py()
        if lo is not None and (
            (col.min is not None and lo < col.min) or (col.max is not None and hi > col.max)
        ):
            masks = []
            if col.min is not None:
                masks.append(pc.less(arr, _bound(col.min, arr.type)))
            if col.max is not None:
                masks.append(pc.greater(arr, _bound(col.max, arr.type)))
            mask = masks[0] if len(masks) == 1 else pc.or_(masks[0], masks[1])
            found.append(
                Violation(
                    col.name,
                    "range",
                    col.level("range"),
                    [_json(lo), _json(hi)],
                    [_json(col.min), _json(col.max)],
                    _count(mask),
                    _examples(table, _first(mask)),
                )
            )
    if col.categories is not None:
        found += _check_categories(table, arr, col)
    return found


def _bound(value: int | float, t: pa.DataType) -> pa.Scalar:
    """``value`` as a scalar comparable with a column of type ``t``.

    Whole numbers stay exact when the column's integer type can hold them; a bound beyond
    it (``max = 2**70`` on int64) is compared as a float, which pyarrow can hold.
    """
    import pyarrow as pa

    if isinstance(value, int) and pa.types.is_integer(t):
        try:
            return pa.scalar(value, type=t)
        except (OverflowError, pa.ArrowInvalid):
            pass
    return pa.scalar(float(value))


def _check_categories(table: pa.Table, arr: pa.ChunkedArray, col: ColumnSchema) -> list[Violation]:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        allowed = pa.array(
            list(col.categories or ()), type=arr.type if arr.type != pa.null() else None
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise InvalidParameterError(
            f"Column {col.name!r} categories: got {list(col.categories or ())!r}; expected values "
            f"of the column's type {arr.type}. Fix the categories in the schema file."
        ) from exc
    outside = pc.invert(pc.is_in(arr, value_set=allowed))
    mask = pc.and_(outside, pc.is_valid(arr))
    count = _count(mask)
    if not count:
        return []
    unseen = pc.unique(pc.filter(arr, mask))[:EXAMPLES].to_pylist()
    return [
        Violation(
            col.name,
            "categories",
            col.level("categories"),
            [_json(v) for v in unseen],
            [_json(v) for v in col.categories or ()],
            count,
            _examples(table, _first(mask)),
        )
    ]


# -- helpers --------------------------------------------------------------------------------


def logical_dtype(t: pa.DataType) -> str:
    """The schema's dtype word for an Arrow type (``int32`` and ``uint8`` are both ``integer``)."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_null(t):
        return "null"
    return "other"


def _physical(t: pa.DataType, dtype: str) -> str:
    return dtype if dtype == "null" else f"{dtype} ({t})"


def _decoded(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Categorical (dictionary) columns as plain values, so pandas and polars agree."""
    import pyarrow as pa

    return arr.cast(arr.type.value_type) if pa.types.is_dictionary(arr.type) else arr


def _missing(arr: pa.ChunkedArray, dtype: str) -> int:
    """Nulls, plus NaN in float columns: pandas turns NaN into null, polars keeps it."""
    import pyarrow.compute as pc

    if dtype != "float":
        return int(arr.null_count)
    return _count(pc.is_null(arr, nan_is_null=True))


def _count(mask: pa.ChunkedArray) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(mask).as_py() or 0)


def _first(mask: pa.ChunkedArray) -> pa.Array:
    """Row numbers of the first few true values of ``mask`` (nulls count as false)."""
    import pyarrow.compute as pc

    return pc.indices_nonzero(pc.fill_null(mask, False))[:EXAMPLES]


def _examples(table: pa.Table, rows: pa.Array) -> list[dict[str, Any]]:
    taken = table.take(rows).to_pylist()
    return [
        {"row": int(r), "values": {k: _json(v) for k, v in values.items()}}
        for r, values in zip(rows.to_pylist(), taken, strict=True)
    ]


def _json(value: Any) -> Any:
    """A JSON-safe form: NaN as null (it counts as missing), ±inf and other types as text."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)
