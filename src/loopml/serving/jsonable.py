"""numpy values as the JSON a response or the prediction log holds.

Missing values (NaN, None, pandas' NA and NaT) become ``null``; numpy scalars become Python
numbers; datetimes become ISO 8601 text. Whole columns are converted at once.
"""

from __future__ import annotations

from typing import Any


def column_values(values: Any) -> list[Any]:
    """A 1-D array (or Series) as a list of JSON-able Python values."""
    import numpy as np

    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "f":
        out: list[Any] = arr.astype(object).tolist()
        return [None if v != v else v for v in out]  # NaN is the one value unequal to itself
    if kind in "iub":
        return arr.tolist()  # type: ignore[no-any-return]
    if kind == "M":
        return [None if v != v else str(v) for v in arr.astype("datetime64[us]").astype(object)]
    return [_scalar(v) for v in arr.tolist()]


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else value
    item = getattr(value, "item", None)  # a numpy scalar inside an object array
    if item is not None:
        return _scalar(item())
    try:
        if value != value:  # pandas NA / NaT
            return None
    except (TypeError, ValueError):
        return None  # pd.NA: its truth value is ambiguous
    return str(value)
