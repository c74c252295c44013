"""Infer expectations from a reference table, and check new data against them.

``infer_schema(reference)`` reads the column set, dtypes, missing values, numeric ranges
(widened by a tolerance), small sets of categories and the row count; ``validate(data,
schema)`` checks a table against a :class:`~loopml.data.schema.Schema` and returns a
:class:`~loopml.data.validate_report.ValidationReport`, raising
:class:`~loopml.data.errors.ValidationError` when an expectation of severity ``"error"``
fails.

The checks themselves, vectorised over Arrow columns, are in ``validate_checks.py``; the
reading of inputs in ``tables.py``. pyarrow is imported inside the functions, so
importing this module costs nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.data.errors import ValidationError
from loopml.data.schema import ColumnSchema, Schema, TableSchema
from loopml.data.tables import as_arrow
from loopml.data.validate_checks import (
    check_column,
    check_key,
    check_table,
    decoded,
    logical_dtype,
    missing_count,
)
from loopml.data.validate_report import ValidationReport, Violation
from loopml.errors import InvalidParameterError, did_you_mean

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Schema", "ValidationReport", "Violation", "infer_schema", "validate"]

logger = logging.getLogger(__name__)


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
    table = as_arrow(reference, what="reference")
    keys = _key_columns(key, table.column_names)
    columns = tuple(
        _infer_column(name, table.column(name), table.num_rows, tolerance, max_categories)
        for name in table.column_names
    )
    schema = Schema(
        table=TableSchema(min_rows=1 if table.num_rows else 0, key=keys), columns=columns
    )
    if keys:
        dupes = check_key(table, schema.table)
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

    col = decoded(col)
    dtype = logical_dtype(col.type)
    missing = missing_count(col, dtype)
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
    table = as_arrow(data)
    found = check_table(table, schema)
    for col in schema.columns:
        if col.name in table.column_names:
            found += check_column(table, col)
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
