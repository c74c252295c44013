"""Drift statistics between a reference and a current table (monitoring reuses them).

``drift(reference, current)`` compares every column the two tables share and returns a
``DriftReport``. Tables may be pandas or polars DataFrames or pyarrow Tables; each column
is read as Arrow and then as numpy. pandas, polars, pyarrow, numpy and scipy are imported
inside the functions, so importing this module costs nothing.

Column kinds:

- **numeric**: integers, floats, decimals, and dates/times/durations (compared on their
  int64 value, e.g. nanoseconds; the normed Wasserstein distance makes the unit drop out).
  Values are compared as float64 (integers beyond 2**53 lose precision).
- **categorical**: strings, booleans, binary, dictionary (pandas ``category``, polars
  ``Categorical``/``Enum``). Values are compared by equality.
- anything else (lists, structs) is of kind **other** and not compared, with a note.

Missing values (null, and NaN in float columns) are left out of every distribution
statistic and reported as the missing rate of each table.

Statistics (all computed for every column; ``drift_stats.py`` has the arithmetic):

- ``psi``: population stability index, sum of (c - r) * ln(c / r) over bin shares.
  Numeric bins are cut at the reference deciles (``bins=10``; quantiles with linear
  interpolation, equal cuts merged, so a column with many ties has fewer bins, and a
  constant one two: its value and above). Categorical bins are the categories. An empty
  bin's share is replaced by 1e-4.
- ``ks``, ``ks_pvalue``: the two-sample Kolmogorov–Smirnov statistic and two-sided
  p-value, as ``scipy.stats.ks_2samp(reference, current)`` (method "auto": exact up to
  10,000 values per side, else Smirnov's asymptotic distribution).
- ``wasserstein``: ``scipy.stats.wasserstein_distance(reference, current)``;
  ``wasserstein_normed`` divides it by the reference's standard deviation (ddof 0), as
  Evidently does (a constant reference gives 0 if nothing moved, else inf).
- ``chi2``, ``chi2_pvalue``: Pearson's chi-square goodness-of-fit of the current category
  counts against the reference shares scaled to the current size,
  ``scipy.stats.chisquare(current, f_exp=reference / n_ref * n_cur)``; a category the
  reference never had makes it infinite (p = 0).
- ``jensen_shannon``: ``scipy.spatial.distance.jensenshannon(reference, current)`` on the
  category shares, natural logarithm (so it lies in [0, sqrt(ln 2) ≈ 0.833]).

Which statistic decides ``drifted`` follows Evidently's default algorithm (its "data
drift algorithm" reference page): with at most ``small_sample`` (1,000) reference values,
a test — KS p-value < 0.05 for numeric, chi-square p-value < 0.05 for categorical; with
more, a distance, which unlike a p-value does not flag every tiny shift in a large sample
— normed Wasserstein > 0.1 for numeric, Jensen–Shannon > 0.1 for categorical. PSI is
always reported and never decides; its conventional reading (Siddiqi, *Credit Risk
Scorecards*, 2006) is < 0.1 stable, 0.1–0.25 some change, > 0.25 a major shift. A column
missing in one table, or whose kind changed, is drifted by definition (method
``"schema"``); one with no values in one table is drifted if the other has values
(method ``"missing"``) rather than an error, since a feature going all-null is exactly
what monitoring must report.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from loopml.data.drift_columns import column_drift, schema_only
from loopml.data.drift_report import ColumnDrift, DriftReport, SchemaChanges, sort_worst_first
from loopml.errors import InvalidParameterError, did_you_mean

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DEFAULT_THRESHOLDS", "ColumnDrift", "DriftReport", "SchemaChanges", "drift"]

DEFAULT_THRESHOLDS: dict[str, float] = {
    "wasserstein_normed": 0.1,  # Evidently: numeric, > 1,000 reference values
    "jensen_shannon": 0.1,  # Evidently: categorical, > 1,000 reference values
    "ks_pvalue": 0.05,  # Evidently: numeric, <= 1,000 reference values
    "chi2_pvalue": 0.05,  # Evidently: categorical, <= 1,000 reference values
    "small_sample": 1000,  # reference size up to which the tests decide
}


def drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    bins: int = 10,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column.

    Args:
        reference: the table taken as normal (pandas/polars DataFrame or pyarrow Table).
        current: the table to check, of the same kinds.
        columns: only these columns (default: all); each must be in one table at least.
        thresholds: overrides of ``DEFAULT_THRESHOLDS``, by statistic name.
        bins: number of reference-quantile bins for the numeric PSI.

    Returns:
        A ``DriftReport`` with the columns sorted worst first and the schema changes.

    Raises:
        InvalidParameterError: a non-table input, an empty table, an unknown column, a
            bad threshold or bin count.

    Example:
        >>> import pandas as pd
        >>> from loopml.data.drift import drift
        >>> report = drift(pd.DataFrame({"x": [1, 2, 3] * 10}), pd.DataFrame({"x": [7, 8, 9] * 10}))
        >>> report.drifted
        ['x']
    """
    limits = _check_thresholds(thresholds)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise InvalidParameterError(
            f"Parameter 'bins': got {bins!r}; expected an integer >= 2. "
            "Use bins=10 (deciles) unless you need finer PSI bins."
        )
    ref = _as_arrow(reference, "reference")
    cur = _as_arrow(current, "current")
    ref_types = {name: str(ref.schema.field(name).type) for name in ref.column_names}
    cur_types = {name: str(cur.schema.field(name).type) for name in cur.column_names}
    names = _select(columns, ref_types, cur_types)
    schema = SchemaChanges(
        added=tuple((n, cur_types[n]) for n in names if n not in ref_types),
        removed=tuple((n, ref_types[n]) for n in names if n not in cur_types),
        changed=tuple(
            (n, ref_types[n], cur_types[n])
            for n in names
            if n in ref_types and n in cur_types and ref_types[n] != cur_types[n]
        ),
    )
    shared = [n for n in names if n in ref_types and n in cur_types]

    def one(name: str) -> ColumnDrift:
        return column_drift(name, ref.column(name), cur.column(name), limits, bins)

    # numpy's sorts and searchsorted release the GIL, so threads share the cores.
    workers = max(1, min(len(shared), os.cpu_count() or 1))
    if workers > 1:
        from loopml._signals import leave_signals_to_main_thread

        with ThreadPoolExecutor(
            workers, thread_name_prefix="loopml-drift", initializer=leave_signals_to_main_thread
        ) as pool:
            results = list(pool.map(one, shared))
    else:
        results = [one(n) for n in shared]
    for n in names:
        only = schema_only(n, ref_types, cur_types, ref, cur)
        if only is not None:
            results.append(only)
    return DriftReport(
        columns=sort_worst_first(results),
        schema=schema,
        rows_reference=ref.num_rows,
        rows_current=cur.num_rows,
        thresholds=limits,
    )


def _check_thresholds(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    limits = dict(DEFAULT_THRESHOLDS)
    if thresholds is None:
        return limits
    if not isinstance(thresholds, Mapping):
        raise InvalidParameterError(
            f"Parameter 'thresholds': got {thresholds!r}; expected a dict of statistic name "
            f"to number, e.g. {{'jensen_shannon': 0.2}}."
        )
    for key, value in thresholds.items():
        if key not in DEFAULT_THRESHOLDS:
            raise InvalidParameterError(
                f"Threshold {key!r}: unknown statistic.{did_you_mean(str(key), DEFAULT_THRESHOLDS)} "
                f"Known thresholds: {sorted(DEFAULT_THRESHOLDS)}."
            )
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        number = float(value) if ok else math.nan
        if key.endswith("_pvalue"):
            ok = ok and 0 < number < 1
            rule = "a p-value strictly between 0 and 1, e.g. 0.05"
        elif key == "small_sample":
            ok = ok and number >= 0 and number == int(number)
            rule = "a whole number of rows >= 0, e.g. 1000"
        else:
            ok = ok and 0 < number < math.inf
            rule = "a finite distance > 0, e.g. 0.1"
        if not ok:
            raise InvalidParameterError(
                f"Threshold {key!r}: got {value!r}; expected {rule}. "
                f"The default is {DEFAULT_THRESHOLDS[key]}."
            )
        limits[key] = number
    return limits


def _as_arrow(table: Any, what: str) -> pa.Table:
    """A pyarrow Table from a pandas/polars DataFrame, a pyarrow Table or a file; never empty."""
    from loopml.data.tables import as_arrow

    result = as_arrow(table, what=f"Parameter {what!r}", mixed_as_text=True)
    if result.num_rows == 0 or result.num_columns == 0:
        raise InvalidParameterError(
            f"Parameter {what!r}: got an empty table ({result.num_rows} rows, "
            f"{result.num_columns} columns); expected at least one row and one column. "
            "Drift needs data on both sides: check the query or filter that built it."
        )
    return result


def _select(
    columns: Sequence[str] | None, ref_types: dict[str, str], cur_types: dict[str, str]
) -> list[str]:
    known = list(ref_types) + [n for n in cur_types if n not in ref_types]
    if columns is None:
        return known
    if isinstance(columns, str):
        raise InvalidParameterError(
            f"Parameter 'columns': got the string {columns!r}; expected a list of column "
            f"names. Use columns=[{columns!r}]."
        )
    for name in columns:
        if name not in ref_types and name not in cur_types:
            raise InvalidParameterError(
                f"Column {name!r}: not in the reference or the current table."
                f"{did_you_mean(str(name), known)} Columns: {known}"
            )
    return list(dict.fromkeys(columns))
