"""The checks behind ``validate``: one function per kind of expectation, over Arrow columns.

Each check first computes a cheap summary of the whole column (null count, min/max,
distinct count); only when that shows a problem does it build the boolean mask of the
offending rows, from which the count and the first example rows are taken. No Python loop
runs over rows. pyarrow (and numpy, for integer keys) are imported inside the functions.
"""

from __future__ import annotations

import datetime
import decimal
import math
from typing import TYPE_CHECKING, Any

from loopml.data.schema import ColumnSchema, Schema, TableSchema
from loopml.data.validate_report import Violation
from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import pyarrow as pa

EXAMPLES = 5
_ROW = "__loopml_row__"


def check_table(table: pa.Table, schema: Schema) -> list[Violation]:
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
        dupes = check_key(table, t)
        if dupes is not None:
            found.append(dupes)
    return found


def check_key(table: pa.Table, t: TableSchema) -> Violation | None:
    import pyarrow.compute as pc

    keys = list(t.key)
    if len(keys) > 1:
        return _check_compound_key(table, t)
    arr = decoded(table.column(keys[0]))
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


def check_column(table: pa.Table, col: ColumnSchema) -> list[Violation]:
    import pyarrow.compute as pc

    arr = decoded(table.column(col.name))
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
    missing = missing_count(arr, dtype)
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

    if arr.type == pa.null():  # every value is missing (a header-only CSV): none is outside
        return []
    try:
        allowed = pa.array(list(col.categories or ()), type=arr.type)
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


def decoded(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Categorical (dictionary) columns as plain values, so pandas and polars agree."""
    import pyarrow as pa

    return arr.cast(arr.type.value_type) if pa.types.is_dictionary(arr.type) else arr


def missing_count(arr: pa.ChunkedArray, dtype: str) -> int:
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
