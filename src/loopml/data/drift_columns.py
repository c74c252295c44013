"""One column's drift: read it from Arrow, compute its statistics, decide the verdict.

``drift.py`` handles the tables (inputs, schema, thresholds, threads); this module handles
one column pair at a time and is what each worker thread runs. The arithmetic itself is
in ``drift_stats.py``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from loopml.data.drift_report import ColumnDrift, Histogram

if TYPE_CHECKING:
    import pyarrow as pa

TOP_CATEGORIES = 10
HISTOGRAM_BINS = 20


def kind_of(dtype: pa.DataType) -> str:
    import pyarrow as pa

    t = pa.types
    if t.is_integer(dtype) or t.is_floating(dtype) or t.is_decimal(dtype):
        return "numeric"
    if t.is_temporal(dtype) and not t.is_interval(dtype):
        return "numeric"
    if t.is_boolean(dtype) or t.is_dictionary(dtype):
        return "categorical"
    if t.is_string(dtype) or t.is_large_string(dtype) or t.is_binary(dtype):
        return "categorical"
    if t.is_large_binary(dtype) or str(dtype) in ("string_view", "binary_view"):
        return "categorical"
    return "other"


def schema_only(
    name: str,
    ref_types: dict[str, str],
    cur_types: dict[str, str],
    ref: pa.Table,
    cur: pa.Table,
) -> ColumnDrift | None:
    """A column in one table only: drifted, with the missing rate of the side it is on."""
    if name in ref_types and name in cur_types:
        return None
    side = ref if name in ref_types else cur
    col = side.column(name)
    rate = col.null_count / side.num_rows
    return ColumnDrift(
        column=name,
        kind=kind_of(col.type),
        statistics={},
        method="schema",
        threshold=math.nan,
        score=math.nan,
        drifted=True,
        count_reference=len(col) - col.null_count if side is ref else 0,
        count_current=len(col) - col.null_count if side is cur else 0,
        missing_rate_reference=rate if side is ref else 1.0,
        missing_rate_current=rate if side is cur else 1.0,
        note="only in the reference" if side is ref else "only in the current table",
    )


def column_drift(
    name: str,
    ref_col: pa.ChunkedArray,
    cur_col: pa.ChunkedArray,
    limits: dict[str, float],
    bins: int,
) -> ColumnDrift:
    import pyarrow as pa

    # A column with no value at all may have Arrow's "null" type (pandas None, polars
    # Null): read it as all-missing values of the other side's type.
    if pa.types.is_null(ref_col.type) and pa.types.is_null(cur_col.type):
        base0: dict[str, Any] = {"column": name, "kind": "other"}
        return _undecided(base0, ref_col, cur_col, "all values missing in both tables", "")
    if pa.types.is_null(ref_col.type):
        ref_col = pa.chunked_array([pa.nulls(len(ref_col), cur_col.type)])
    elif pa.types.is_null(cur_col.type):
        cur_col = pa.chunked_array([pa.nulls(len(cur_col), ref_col.type)])
    kinds = (kind_of(ref_col.type), kind_of(cur_col.type))
    base: dict[str, Any] = {"column": name, "kind": kinds[0]}
    if kinds[0] != kinds[1]:
        return _undecided(
            base, ref_col, cur_col, f"kind changed: {kinds[0]} -> {kinds[1]}", "schema"
        )
    if kinds[0] == "other":
        return _undecided(base, ref_col, cur_col, f"type {ref_col.type} is not compared", "")
    if kinds[0] == "numeric":
        return _numeric(base, ref_col, cur_col, limits, bins)
    return _categorical(base, ref_col, cur_col, limits)


def _undecided(
    base: dict[str, Any],
    ref_col: pa.ChunkedArray,
    cur_col: pa.ChunkedArray,
    note: str,
    method: str,
) -> ColumnDrift:
    return ColumnDrift(
        **base,
        statistics={},
        method=method,
        threshold=math.nan,
        score=math.nan,
        drifted=method != "",
        count_reference=len(ref_col) - ref_col.null_count,
        count_current=len(cur_col) - cur_col.null_count,
        missing_rate_reference=ref_col.null_count / max(len(ref_col), 1),
        missing_rate_current=cur_col.null_count / max(len(cur_col), 1),
        note=note,
    )


def _decide(
    base: dict[str, Any],
    statistics: dict[str, float],
    method: str,
    limits: dict[str, float],
    counts: tuple[int, int],
    rates: tuple[float, float],
    **extra: Any,
) -> ColumnDrift:
    """The verdict: ``method``'s score against its threshold; empty sides judged apart."""
    threshold = limits[method]
    note = ""
    if counts[0] == 0 or counts[1] == 0:
        # No values on one side: nothing to compare, but values appearing or
        # disappearing entirely is drift.
        statistics = dict.fromkeys(statistics, math.nan)
        score = math.nan
        drifted = counts[0] != counts[1]
        side = "both tables" if not drifted else "the reference" if counts[0] == 0 else "current"
        note = f"all values missing in {side}"
        method, threshold = "missing", math.nan
    else:
        score = statistics[method]
        drifted = score < threshold if method.endswith("_pvalue") else score > threshold
    return ColumnDrift(
        **base,
        statistics=statistics,
        method=method,
        threshold=threshold,
        score=score,
        drifted=bool(drifted),
        count_reference=counts[0],
        count_current=counts[1],
        missing_rate_reference=rates[0],
        missing_rate_current=rates[1],
        note=note,
        **extra,
    )


def _sorted_numbers(col: pa.ChunkedArray) -> tuple[Any, float]:
    """The non-missing values as a sorted float64 array, and the missing rate."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    total = len(col)
    if pa.types.is_temporal(col.type):
        width = pa.int32() if col.type.bit_width == 32 else pa.int64()
        col = col.cast(width)
    values = np.array(pc.drop_null(col).to_numpy(), dtype=np.float64)
    if pa.types.is_floating(col.type) or pa.types.is_decimal(col.type):
        nan = np.isnan(values)
        if nan.any():
            values = values[~nan]
    values.sort()
    return values, (total - len(values)) / total if total else 0.0


def _numeric(
    base: dict[str, Any],
    ref_col: pa.ChunkedArray,
    cur_col: pa.ChunkedArray,
    limits: dict[str, float],
    bins: int,
) -> ColumnDrift:
    from loopml.data.drift_stats import numeric_statistics

    x, ref_rate = _sorted_numbers(ref_col)
    y, cur_rate = _sorted_numbers(cur_col)
    small = len(x) <= limits["small_sample"]
    method = "ks_pvalue" if small else "wasserstein_normed"
    names = ("psi", "ks", "ks_pvalue", "wasserstein", "wasserstein_normed")
    if len(x) and len(y):
        statistics = numeric_statistics(x, y, bins=bins)
    else:
        statistics = dict.fromkeys(names, math.nan)
    return _decide(
        base,
        statistics,
        method,
        limits,
        (len(x), len(y)),
        (ref_rate, cur_rate),
        histogram=_numeric_histogram(x, y),
    )


def _numeric_histogram(x: Any, y: Any) -> Histogram | None:
    """Equal-width bins over the finite range of both samples (for the charts)."""
    import numpy as np

    ends = []
    for a in (x, y):
        first = int(np.searchsorted(a, -np.inf, side="right"))
        stop = int(np.searchsorted(a, np.inf, side="left"))
        if stop > first:
            ends += [a[first], a[stop - 1]]
    if not ends:
        return None
    lo, hi = float(min(ends)), float(max(ends))
    # A single value still gets a (unit-wide) bin to draw.
    edges = np.array([lo - 0.5, hi + 0.5]) if lo == hi else np.linspace(lo, hi, HISTOGRAM_BINS + 1)

    def counts(a: Any) -> tuple[int, ...]:
        cut = np.concatenate(([0], np.searchsorted(a, edges[1:-1], side="left"), [len(a)]))
        return tuple(int(c) for c in np.diff(cut))

    return Histogram(reference=counts(x), current=counts(y), edges=tuple(float(e) for e in edges))


def _category_counts(col: pa.ChunkedArray) -> tuple[pa.Array, Any, float]:
    """Distinct non-missing values (dictionaries decoded), their counts, the missing rate."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    counted = pc.value_counts(col)
    values = counted.field("values")
    counts = counted.field("counts").to_numpy()
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    present = values.is_valid()
    values = values.filter(present)
    counts = counts[present.to_numpy(zero_copy_only=False)]
    total = len(col)
    missing = (total - int(counts.sum())) / total if total else 0.0
    return values, np.asarray(counts, dtype=np.int64), missing


def _categorical(
    base: dict[str, Any],
    ref_col: pa.ChunkedArray,
    cur_col: pa.ChunkedArray,
    limits: dict[str, float],
) -> ColumnDrift:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from loopml.data.drift_stats import categorical_statistics

    ref_values, ref_counts, ref_rate = _category_counts(ref_col)
    cur_values, cur_counts, cur_rate = _category_counts(cur_col)
    if ref_values.type != cur_values.type:
        # e.g. string vs large_string, or bool vs string: compare by text.
        ref_values = ref_values.cast(pa.large_string())
        cur_values = cur_values.cast(pa.large_string())
    union = pc.unique(pa.concat_arrays([ref_values, cur_values]))

    def aligned(values: pa.Array, counts: Any) -> Any:
        if len(counts) == 0:
            return np.zeros(len(union), dtype=np.int64)
        where = pc.fill_null(pc.index_in(union, value_set=values), -1).to_numpy()
        return np.where(where >= 0, counts[np.maximum(where, 0)], 0)

    r = aligned(ref_values, ref_counts)
    c = aligned(cur_values, cur_counts)
    n_ref, n_cur = int(r.sum()), int(c.sum())
    small = n_ref <= limits["small_sample"]
    method = "chi2_pvalue" if small else "jensen_shannon"
    if n_ref and n_cur:
        statistics = categorical_statistics(r, c)
    else:
        statistics = dict.fromkeys(("psi", "chi2", "chi2_pvalue", "jensen_shannon"), math.nan)

    def top(mask: Any, counts: Any) -> tuple[tuple[str, int], ...]:
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-counts[idx], kind="stable")][:TOP_CATEGORIES]
        labels = union.take(pa.array(idx, type=pa.int64())).to_pylist()
        return tuple((str(v), int(counts[i])) for v, i in zip(labels, idx, strict=True))

    new = (r == 0) & (c > 0)
    vanished = (c == 0) & (r > 0)
    share = r / max(n_ref, 1) + c / max(n_cur, 1)
    order = np.argsort(-share, kind="stable")
    shown = order[:TOP_CATEGORIES]
    labels = [str(v) for v in union.take(pa.array(shown, type=pa.int64())).to_pylist()]
    ref_shown = [int(v) for v in r[shown]]
    cur_shown = [int(v) for v in c[shown]]
    if len(order) > TOP_CATEGORIES:
        rest = order[TOP_CATEGORIES:]
        labels.append(f"(other {len(rest)})")
        ref_shown.append(int(r[rest].sum()))
        cur_shown.append(int(c[rest].sum()))
    return _decide(
        base,
        statistics,
        method,
        limits,
        (n_ref, n_cur),
        (ref_rate, cur_rate),
        new_categories=top(new, c),
        new_categories_total=int(new.sum()),
        vanished_categories=top(vanished, r),
        vanished_categories_total=int(vanished.sum()),
        histogram=Histogram(
            reference=tuple(ref_shown), current=tuple(cur_shown), labels=tuple(labels)
        ),
    )
