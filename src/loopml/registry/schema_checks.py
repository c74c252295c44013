"""The check of one column against its :class:`~loopml.registry.schema.ColumnSpec`, the
reading of input into a pandas frame, and the words of the errors.

Kept apart from ``schema.py`` (the values, inference and ``check_input`` itself) because
this is the part that knows pandas dtypes one by one. Every check first looks at the
column's dtype (free) and at one vectorised pass (``isna``, ``isin``, a whole-number test);
only when that finds a problem does it pick the offending rows, and only then does Python
look at single values, to show up to five of them. numpy and pandas are imported inside
the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.data.schema import DTYPES
from loopml.data.validate_checks import EXAMPLES, logical_dtype
from loopml.errors import InvalidParameterError, did_you_mean

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from loopml.registry.schema import ColumnSpec

KINDS = (*DTYPES[:4], "category", "datetime")  # the data layer's words, plus two for models
_SHOWN_KNOWN = 20
_OBJECT_KINDS = {  # pandas.api.types.infer_dtype on an object column -> kind
    "string": "string",
    "boolean": "boolean",
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
    "empty": "null",
}
_EXPECTED = {
    "integer": "whole numbers",
    "float": "numbers",
    "boolean": "true/false values",
    "string": "text",
    "category": "categories",
    "datetime": "datetimes (or ISO 8601 text)",
}


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """One way the data breaks the schema.

    Args:
        column: the column, or ``None`` for problems of the whole input (missing columns).
        rule: ``missing_columns``, ``extra_columns``, ``column_name``, ``dtype``,
            ``missing_values``, ``unseen_categories`` or ``input``.
        expected: what the schema asks for, in words.
        got: what came, in words (counts and example values).
        fix: how to fix it.
        rows: up to 5 offending row positions (0-based), for a column's values.
    """

    column: str | None
    rule: str
    expected: str
    got: str
    fix: str
    rows: tuple[int, ...] = ()

    def describe(self) -> str:
        where = f"column {shown(self.column)}" if self.column is not None else "input"
        return f"{where}: got {self.got}; expected {self.expected}. {self.fix}"


class SchemaError(InvalidParameterError):
    """Data does not fit a model's schema; ``.problems`` lists every :class:`SchemaProblem`."""

    def __init__(
        self, problems: Sequence[SchemaProblem], *, headline: str = "Input does not fit the model"
    ) -> None:
        self.problems = tuple(problems)
        self.headline = headline
        n = len(self.problems)
        lines = [f"{headline} ({n} problem{'s' if n != 1 else ''}):"]
        lines += [f"  - {p.describe()}" for p in self.problems]
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[Any, ...]:  # keyword arguments do not survive the default
        return (_rebuild_error, (self.problems, self.headline))


def _rebuild_error(problems: tuple[SchemaProblem, ...], headline: str) -> SchemaError:
    return SchemaError(problems, headline=headline)


def coerce(s: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, list[SchemaProblem]]:
    """The column in the spec's dtype, and the problems that stop it being so."""
    import numpy as np
    import pandas as pd

    found = kind_of(s)
    missing = s.isna()
    problems: list[SchemaProblem] = []
    has_missing = bool(missing.any())
    if has_missing and not spec.nullable:
        problems.append(_missing_problem(spec.name, missing))
    kind = spec.kind
    if found == "null" or ((has_missing or not len(s)) and bool(missing.all())):
        # no values (all missing, or no rows): nothing can clash, whatever the dtype says
        return _empty_like(s, spec), problems
    if kind in ("float", "integer") and found in ("float", "integer"):
        if kind == "float" or found == "integer":
            if s.dtype == "uint64" and len(s) and int(s.max()) > np.iinfo("int64").max:
                bad = s > np.iinfo("int64").max
                problems.append(_dtype_problem(s, spec, bad, "whole numbers beyond int64"))
                return s, problems
            if kind == "float":
                values = s if s.dtype == "float64" else _floats(s)
                infinite = np.isinf(values.to_numpy(dtype="float64", na_value=np.nan))
                if infinite.any():  # fits the dtype, but no model can score it
                    problems.append(_infinite_problem(spec.name, infinite))
                return values, problems
            try:
                return _ints(s, spec, has_missing), problems
            except OverflowError:  # Python ints beyond int64 in an object column (JSON)
                bad = s.map(lambda v: isinstance(v, int) and not -(2**63) <= v < 2**63)
                problems.append(_dtype_problem(s, spec, bad, "whole numbers beyond int64"))
                return s, problems
        numbers = s.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(numbers) & (
                ~np.isfinite(numbers)
                | (numbers != np.floor(numbers))
                | (np.abs(numbers) >= 2.0**63)
            )
        if bad.any():
            problems.append(_dtype_problem(s, spec, pd.Series(bad), "numbers with fractions"))
            return s, problems
        return _ints(s, spec, has_missing), problems
    if kind == "boolean" and found == "boolean":
        return s.astype("boolean" if spec.nullable else "bool") if not problems else s, problems
    if kind == "string" and found in ("string", "category"):
        if found == "category" and _category_kind(s.cat.categories.tolist()) != "string":
            problems.append(
                _dtype_problem(s, spec, ~missing, f"categories of {s.cat.categories.dtype}")
            )
            return s, problems
        values = s.astype(object) if found == "category" else s
        if spec.categories is not None:
            problems += _unseen(values, spec, missing)
        return values, problems
    if kind == "category" and (found == "category" or found == _category_kind(spec.categories)):
        if spec.categories is None:
            return s.astype("category"), problems
        known = list(spec.categories)
        if found == "category":
            if any(c not in set(known) for c in s.cat.categories.tolist()):
                problems += _unseen(s, spec, missing)
            if problems:
                return s, problems
            return s.cat.set_categories(known), problems
        problems += _unseen(s, spec, missing)
        if problems:
            return s, problems
        return pd.Series(pd.Categorical(s, categories=known), index=s.index, name=s.name), problems
    if kind == "datetime" and found in ("datetime", "string"):
        if found == "datetime":
            return s, problems
        try:
            parsed = pd.to_datetime(s, format="ISO8601", errors="coerce")
        except (ValueError, TypeError) as exc:  # e.g. mixed time zones
            problems.append(
                _dtype_problem(s, spec, ~missing, f"text that is not one datetime ({exc})")
            )
            return s, problems
        bad = parsed.isna() & ~missing
        if bad.any():
            problems.append(_dtype_problem(s, spec, bad, "text that is not ISO 8601"))
        return parsed, problems
    problems.append(_dtype_problem(s, spec, _misfits(s, spec.kind, found, missing), None))
    return s, problems


def _floats(s: pd.Series) -> pd.Series:
    import numpy as np
    import pandas as pd

    return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index, name=s.name)


def _ints(s: pd.Series, spec: ColumnSpec, has_missing: bool) -> pd.Series:
    if spec.nullable:
        return s.astype("Int64")
    if has_missing:  # already reported; the column is not used
        return s
    if s.dtype == "int64":
        return s
    return s.astype("Int64").astype("int64") if s.dtype.kind not in "iu" else s.astype("int64")


def _empty_like(s: pd.Series, spec: ColumnSpec) -> pd.Series:
    """A column of ``len(s)`` missing values (none for an empty batch) in the spec's dtype."""
    import pandas as pd

    n = len(s)
    if spec.kind == "category":
        cats = list(spec.categories) if spec.categories is not None else []
        return pd.Series(pd.Categorical([None] * n, categories=cats), index=s.index)
    nullable = spec.nullable or n > 0  # a gap needs the nullable dtype (an error if not allowed)
    dtype = {
        "float": "float64",
        "integer": "Int64" if nullable else "int64",
        "boolean": "boolean" if nullable else "bool",
        "datetime": "datetime64[ns]",
    }.get(spec.kind)
    if dtype is None:  # text: pandas' own text dtype (``str`` from pandas 3, ``object`` before)
        return pd.Series(None, index=s.index, dtype=object).astype(pd.Series([""]).dtype)
    return pd.Series(None, index=s.index, dtype=dtype)


# -- kinds ----------------------------------------------------------------------------------


def kind_of(s: pd.Series) -> str:
    """The kind of a column's values: one of :data:`KINDS`, ``"null"`` (no values) or
    ``"other"``. An object column is judged by its values, skipping missing ones."""
    import pandas as pd
    from pandas.api import types as pt

    d = s.dtype
    if isinstance(d, pd.CategoricalDtype):
        return "category"
    if isinstance(d, pd.ArrowDtype):
        word = logical_dtype(d.pyarrow_dtype)
        return "datetime" if word in ("date", "timestamp") else word
    if pt.is_bool_dtype(d):
        return "boolean"
    if pt.is_integer_dtype(d):
        return "integer"
    if pt.is_float_dtype(d):
        return "float"
    if pt.is_datetime64_any_dtype(d):
        return "datetime"
    if isinstance(d, pd.StringDtype):
        return "string"
    if pt.is_object_dtype(d):
        return _OBJECT_KINDS.get(pt.infer_dtype(s, skipna=True), "other")
    return "other"


def _category_kind(values: Sequence[Any] | None) -> str:
    """The kind of a list of categories: text, whole numbers or numbers."""
    if values is None or all(isinstance(v, str) for v in values):
        return "string"
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    return "float"


def _fits(value: Any, kind: str) -> bool:
    """Whether one value of an object column is of ``kind`` (only to describe an error)."""
    import datetime
    import numbers

    if kind in ("float", "integer"):
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool) or type(value).__name__ == "bool"
    if kind == "datetime":
        return isinstance(value, datetime.date | str)
    return isinstance(value, str)


def _misfits(s: pd.Series, kind: str, found: str, missing: pd.Series) -> pd.Series:
    """The rows whose values are not of ``kind``: all present ones, unless the column mixes."""
    if found != "other" or s.dtype != object:
        return ~missing
    fits = s.map(lambda v: _fits(v, kind))
    return ~fits.astype(bool) & ~missing


def types_seen(s: pd.Series) -> str:
    if s.dtype != object:
        return ""
    seen = sorted({type(v).__name__ for v in s.dropna().head(10_000)})
    return f" holding values of the types {seen}" if seen else ""


# -- problems -------------------------------------------------------------------------------


def _rows(mask: Any) -> tuple[np.ndarray[Any, Any], int]:
    import numpy as np

    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return hits[:EXAMPLES], len(hits)


def _dtype_problem(s: pd.Series, spec: ColumnSpec, bad: Any, what: str | None) -> SchemaProblem:
    rows, count = _rows(bad)
    found = kind_of(s)
    if what is None:
        what = {"other": "values of mixed types", "string": "text", "null": "no values"}.get(
            found, f"{found} values" if found in KINDS else "values"
        )
    examples = ", ".join(f"{short(s.iloc[r], 40)} at row {r}" for r in rows)
    n = len(s)
    got = f"{what} (dtype {s.dtype}) in {count:,} of {n:,} row{'s' if n != 1 else ''}"
    got += f": {examples}" if examples else ""
    fixes = {
        "float": f"Send numbers; convert text that holds numbers with pd.to_numeric(df[{shown(spec.name)}]).",
        "integer": "Send whole numbers (3 or 3.0).",
        "boolean": "Send true/false; convert other encodings yourself, e.g. df[c] == 'yes'.",
        "string": f"Send text, e.g. df[{shown(spec.name)}].astype(str).",
        "category": f"Send text (or a pandas category) with the training categories{_cats_hint(spec)}.",
        "datetime": "Send datetimes, or ISO 8601 text such as '2024-05-01T12:30:00'.",
    }
    return SchemaProblem(
        spec.name,
        "dtype",
        f"{spec.kind}: {_EXPECTED[spec.kind]}",
        got,
        fixes[spec.kind],
        tuple(int(r) for r in rows),
    )


def _cats_hint(spec: ColumnSpec) -> str:
    return f" ({short(list(spec.categories), 80)})" if spec.categories is not None else ""


def _infinite_problem(name: str, infinite: Any) -> SchemaProblem:
    rows, count = _rows(infinite)
    n = len(infinite)
    return SchemaProblem(
        name,
        "dtype",
        "finite numbers",
        f"infinity in {count:,} of {n:,} row{'s' if n != 1 else ''}, at "
        f"row{'s' if len(rows) != 1 else ''} {', '.join(str(r) for r in rows)}"
        + (", …" if count > len(rows) else ""),
        "Replace infinite values (e.g. with the column's largest finite value).",
        tuple(int(r) for r in rows),
    )


def _missing_problem(name: str, missing: pd.Series) -> SchemaProblem:
    rows, count = _rows(missing)
    n = len(missing)
    return SchemaProblem(
        name,
        "missing_values",
        "no missing values (training had none)",
        f"{count:,} missing value{'s' if count != 1 else ''} (NaN/None/NA) of {n:,} rows, at "
        f"row{'s' if len(rows) != 1 else ''} {', '.join(str(r) for r in rows)}"
        + (", …" if count > len(rows) else ""),
        f"Fill them (e.g. df[{shown(name)}].fillna(...)) or drop those rows: the model never "
        "saw a missing value here.",
        tuple(int(r) for r in rows),
    )


def _unseen(s: pd.Series, spec: ColumnSpec, skip: pd.Series) -> list[SchemaProblem]:
    """A problem listing the values outside the spec's categories (``skip``: rows not to judge)."""
    known = list(spec.categories or ())
    bad = ~s.isin(known) & ~skip
    if not bad.any():
        return []
    rows, count = _rows(bad)
    counts = s[bad].astype(object).value_counts()
    listed = ", ".join(
        f"{short(v, 40)} ({c:,} row{'s' if c != 1 else ''})"
        for v, c in counts.head(EXAMPLES).items()
    )
    more = f" and {len(counts) - EXAMPLES} more" if len(counts) > EXAMPLES else ""
    first = counts.index[0]
    hint = did_you_mean(first, [str(k) for k in known]) if isinstance(first, str) else ""
    return [
        SchemaProblem(
            spec.name,
            "unseen_categories",
            f"one of the {len(known)} categor{'ies' if len(known) != 1 else 'y'} seen in training: "
            + short(known[:_SHOWN_KNOWN], 400)
            + (f" and {len(known) - _SHOWN_KNOWN} more" if len(known) > _SHOWN_KNOWN else ""),
            f"{len(counts)} unseen value{'s' if len(counts) != 1 else ''} in {count:,} "
            f"row{'s' if count != 1 else ''}: {listed}{more}",
            f"Map them to a known category, or retrain with data that has them.{hint}",
            tuple(int(r) for r in rows),
        )
    ]


def absent_problem(absent: list[str], unwanted: list[str], total: int) -> SchemaProblem:
    """Every missing column at once, with a rename for those that differ only a little."""
    import difflib

    folded = {u.casefold(): u for u in unwanted}
    renames = []
    for name in absent:
        close = folded.get(name.casefold()) or next(
            iter(difflib.get_close_matches(name, unwanted, n=1)), None
        )
        if close is not None:
            renames.append(f"{short(close)} -> {short(name)}")
    n = len(absent)
    return SchemaProblem(
        None,
        "missing_columns",
        f"all {total} input column{'s' if total != 1 else ''} of the model",
        f"{n} missing column{'s' if n != 1 else ''}: {short(absent, 400)}",
        "Add them to the input."
        + (f" Perhaps rename: {', '.join(renames[:EXAMPLES])}." if renames else ""),
    )


def input_problem(got: str, expected: str, fix: str) -> SchemaProblem:
    return SchemaProblem(None, "input", expected, got, fix)


# -- reading the input ----------------------------------------------------------------------


def as_frame(X: Any, *, what: str, names: Sequence[str] | None, headline: str) -> pd.DataFrame:
    """``X`` as a pandas DataFrame; ``names`` (when checking) name a numpy array's columns."""
    import numpy as np
    import pandas as pd

    def fail(got: str, expected: str, fix: str) -> SchemaError:
        return SchemaError([input_problem(got, expected, fix)], headline=headline)

    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise fail(
                f"{what}, an array of shape {X.shape}",
                "a 2-D array (rows × columns)",
                "Reshape it, e.g. X.reshape(1, -1) for one row.",
            )
        if names is None:
            return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        if X.shape[1] != len(names):
            raise fail(
                f"{what}, an array of {X.shape[1]} columns",
                f"{len(names)} columns, in the order {short(list(names), 200)}",
                "Pass a DataFrame with named columns, or the columns in that order.",
            )
        return pd.DataFrame(X, columns=list(names))
    if names is not None and isinstance(X, Mapping):
        return pd.DataFrame([X])
    if names is not None and isinstance(X, list):
        if not X:  # an empty batch: no rows, and no columns to read dtypes from
            return pd.DataFrame({n: pd.Series([], dtype=object) for n in names})
        for i, record in enumerate(X):
            if not isinstance(record, Mapping):
                raise fail(
                    f"record {i} of type {type(record).__name__}: {short(record, 60)}",
                    "a list of dicts, one {column: value} per row",
                    "Send each row as an object of column names to values.",
                )
        return pd.DataFrame(X)
    import os

    from loopml.data.tables import ACCEPTED, as_arrow

    if names is not None and not (
        isinstance(X, str | os.PathLike)
        or type(X).__module__.split(".")[0] in ("polars", "pyarrow")
    ):
        raise fail(
            f"{what} of type {type(X).__module__}.{type(X).__qualname__}",
            f"a dict (one record), a list of dicts, a 2-D numpy array, or {ACCEPTED}",
            "For one row of a Series s, pass s.to_dict().",
        )
    table = as_arrow(X, what=what)
    return table.to_pandas(types_mapper=_nullable_dtypes().get)


def _nullable_dtypes() -> dict[Any, Any]:
    """Arrow integer and boolean types as pandas' nullable dtypes, so a gap keeps the kind."""
    import pandas as pd
    import pyarrow as pa

    return {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }


def column_names(
    labels: list[Any], *, extra: str, wanted: set[str] | None = None
) -> tuple[list[str | None], set[str], list[SchemaProblem]]:
    """Column labels as text (``None`` where unusable), the duplicated ones, and the problems.

    Labels that are not text are matched by their text; bytes must decode as UTF-8; text
    must encode as UTF-8 (no lone surrogates). Duplicates that the model would read are
    problems; extra duplicates are only problems when extra columns are.
    """
    names: list[str | None] = []
    problems: list[SchemaProblem] = []
    for label in labels:
        name: str | None
        if isinstance(label, bytes):
            try:
                name = label.decode("utf-8")
            except UnicodeDecodeError:
                name = None
        else:
            name = label if isinstance(label, str) else str(label)
        if name is not None:
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                name = None
        if name is None:
            problems.append(
                SchemaProblem(
                    None,
                    "column_name",
                    "column names of valid UTF-8 text",
                    f"the column name {label!r}",
                    "Rename it, e.g. df.columns = [str(c).encode('utf-8', 'replace').decode() "
                    "for c in df.columns].",
                )
            )
        names.append(name)
    seen: dict[str, int] = {}
    for name in names:
        if name is not None:
            seen[name] = seen.get(name, 0) + 1
    for name, count in seen.items():
        if count > 1 and (wanted is None or name in wanted or extra == "error"):
            problems.append(
                SchemaProblem(
                    name,
                    "column_name",
                    "each column once",
                    f"{count} columns with this name",
                    "Drop or rename the duplicates, e.g. df.loc[:, ~df.columns.duplicated()].",
                )
            )
    return names, {n for n, c in seen.items() if c > 1}, problems


# -- text -----------------------------------------------------------------------------------


def short(value: Any, limit: int = 80, *, plain: bool = False) -> str:
    """``repr(value)`` cut to ``limit`` characters; numpy scalars shown as Python's."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    try:
        text = value if plain and isinstance(value, str) else repr(value)
    except RecursionError:  # a value nested deeper than repr can go (a JSON request can)
        text = f"<{type(value).__name__} nested too deeply to show>"
    text = text.replace("\n", "\\n") if plain else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(name: str | None) -> str:
    return short(name, 80)
