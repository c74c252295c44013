"""The input schema of a model version, inferred from its training data, and the input check.

A :class:`ModelSchema` records one :class:`ColumnSpec` per input column (its kind, whether
training saw missing values, its categories) and what the model outputs. ``infer_schema(X,
y)`` reads it from the training data; ``check_input(X, schema)`` turns a batch into exactly
the frame the model was trained on, or raises one :class:`SchemaError` that lists every
problem (the column, what was expected, what came, the fix).

This is not ``loopml.data.validate``: that judges data quality with tolerances and
severities; this guards a model's ``predict`` and has no tolerance. It shares that module's
dtype words (``integer``, ``float``, ``boolean``, ``string``) and reads Arrow-backed
columns with its ``logical_dtype``; ``category`` (a pandas categorical, whose codes XGBoost
and LightGBM read) and ``datetime`` are the two kinds a model needs on top.

The rules of the check:

- Columns are matched by name, and the result has the schema's columns in the schema's
  order (models read columns by position). Every missing column is named at once. Extra
  columns are dropped (``extra="drop"``) or refused (``extra="error"``). Column names
  that are not text (``0``) are matched by their text (``"0"``); duplicated names, and
  names that are not valid UTF-8 (bytes that do not decode, lone surrogates), are errors.
  The result's columns carry the schema's (text) names: a model fitted on a numpy array or
  on non-text names was fitted without feature names, so predict on ``.to_numpy()``.
- Only safe coercions, those that keep every value's meaning exactly:
  integers of any width to float (a JSON ``3`` in a float column); whole floats to integer
  (``3.0`` is ``3``: JSON has one number type, and pandas stores an integer column with a
  gap as floats); numpy integer widths to int64; pandas nullable dtypes (``Int64``,
  ``Float64``, ``boolean``, Arrow-backed) to their numpy forms; text to a category and a
  category to text; ISO 8601 text to a datetime (the only way JSON can send one). (An
  integer beyond 2**53 turned float rounds, as it would inside any float model.) A column
  with no values at all (every value missing, or no rows) fits any kind.
  Nothing is parsed from text into numbers or booleans (``"3"``, ``"yes"``), booleans are
  not numbers and numbers are not booleans: each of those is a guess that can silently
  change a prediction, so it is an error that shows the rows and the values.
- A float column takes no infinite values: they fit its dtype, but no model scores them
  (scikit-learn and XGBoost refuse them; a tree would silently send them down one side).
- A column that had no missing values in training must have none now (NaN, None, pd.NA
  and NaT all count): most models cannot take them, and those that can (XGBoost,
  LightGBM) never learned what they mean for this column. The error gives the count and
  the rows. A nullable integer or boolean column comes back as pandas ``Int64`` /
  ``boolean``, since numpy's cannot hold a gap.
- A text or category column with few values in training (``max_categories``) accepts
  only those values; the error lists up to five unseen ones with their counts, and the
  known ones. A pandas category column always keeps its categories, in training order,
  and the result is re-coded to them, so every code means what it meant in training for
  whatever reads codes (older XGBoost releases did, as they came; current XGBoost,
  LightGBM and scikit-learn re-map by value themselves). Booleans need no list.
- A batch with no rows is valid and comes back as an empty frame of the right dtypes.

Input may be a pandas DataFrame, a numpy 2-D array (columns ``x0``, ``x1``, … when
inferring; the schema's columns in order when checking), a polars DataFrame, a pyarrow
Table or a file path (read by ``loopml.data.tables``), and for the check also a dict (one
record) or a list of dicts, as a REST request sends them. The check is vectorised: one
pass per column over numpy or Arrow arrays; Python touches single values only to describe
an error. numpy and pandas are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.data.schema import Category
from loopml.errors import InvalidParameterError, did_you_mean
from loopml.registry.schema_checks import (
    KINDS,
    SchemaError,
    SchemaProblem,
    absent_problem,
    as_frame,
    coerce,
    column_names,
    input_problem,
    kind_of,
    short,
    shown,
    types_seen,
)

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

__all__ = [
    "KINDS",
    "ColumnSpec",
    "ModelSchema",
    "SchemaError",
    "SchemaProblem",
    "check_input",
    "infer_schema",
]

OUTPUT_KINDS = ("probabilities", "values", "unknown")
FORMAT = 1
_MAX_CATEGORY_CHARS = 200  # a longer value is free text, not a category
# -- the values ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One input column of a model.

    Args:
        name: the column name.
        kind: one of :data:`KINDS`.
        nullable: whether training saw missing values in it.
        categories: the allowed values of a text or category column, or ``None`` for any.
            A pandas category column keeps its categories' own type and order (integers
            stay integers); text columns' categories are sorted text.
    """

    name: str
    kind: str
    nullable: bool
    categories: tuple[Category, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise InvalidParameterError(
                f"ColumnSpec name: got {self.name!r}; expected text. Use str(name)."
            )
        if not isinstance(self.nullable, bool):
            raise InvalidParameterError(
                f"ColumnSpec {self.name!r} nullable: got {self.nullable!r}; expected True or False."
            )
        if self.kind not in KINDS:
            raise InvalidParameterError(
                f"ColumnSpec {self.name!r} kind: got {self.kind!r}; expected one of "
                f"{list(KINDS)}.{did_you_mean(str(self.kind), KINDS)}"
            )
        if self.categories is not None:
            object.__setattr__(self, "categories", tuple(self.categories))

    def to_dict(self) -> dict[str, Any]:
        cats = None if self.categories is None else list(self.categories)
        return {"name": self.name, "kind": self.kind, "nullable": self.nullable, "categories": cats}


def _unknown_outputs() -> dict[str, Any]:
    return {"kind": "unknown"}


@dataclass(frozen=True)
class ModelSchema:
    """A model's inputs (one :class:`ColumnSpec` each, in order) and outputs.

    ``outputs`` is ``{"kind": "probabilities", "classes": [...]}`` for a classifier,
    ``{"kind": "values", "dtype": "float"}`` for a regressor, ``{"kind": "unknown"}``
    when no target was given.

    Example:
        >>> import json
        >>> s = ModelSchema((ColumnSpec("age", "integer", nullable=False),))
        >>> ModelSchema.from_dict(json.loads(json.dumps(s.to_dict()))) == s
        True
    """

    inputs: tuple[ColumnSpec, ...]
    outputs: dict[str, Any] = field(default_factory=_unknown_outputs)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        names = [c.name for c in self.inputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidParameterError(
                f"ModelSchema inputs: got the columns {dupes} more than once; expected unique "
                "names. Remove the duplicates."
            )
        if not isinstance(self.outputs, dict) or self.outputs.get("kind") not in OUTPUT_KINDS:
            raise InvalidParameterError(
                f"ModelSchema outputs: got {short(self.outputs)}; expected a dict whose kind is "
                f"one of {list(OUTPUT_KINDS)}, e.g. {{'kind': 'values', 'dtype': 'float'}}."
            )

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict, the same for the same schema; :meth:`from_dict` reads it back."""
        import copy

        return {
            "format": FORMAT,
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": copy.deepcopy(self.outputs),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSchema:
        """Read a dict written by :meth:`to_dict` (perhaps through JSON).

        Raises:
            InvalidParameterError: a key or value is wrong; the message gives its path.
        """
        return _parse(d)

    def _headline(self) -> str:
        out = self.outputs
        if out["kind"] == "probabilities":
            what = f"probabilities of classes {short(out.get('classes'), 60)}"
        elif out["kind"] == "values":
            what = f"{out.get('dtype', 'float')} values"
        else:
            what = "not recorded"
        n = len(self.inputs)
        return f"ModelSchema: {n} input{'s' if n != 1 else ''}; outputs: {what}"

    def _rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (
                short(c.name, 32, plain=True),
                c.kind,
                "yes" if c.nullable else "no",
                "any" if c.categories is None else short(list(c.categories), 48),
            )
            for c in self.inputs
        ]

    def __str__(self) -> str:
        head = ("column", "kind", "nullable", "categories")
        rows = self._rows()
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head[:3])]
        lines = [self._headline()]
        for r in [head, *rows]:
            lines.append(
                "  " + "".join(v.ljust(w + 2) for v, w in zip(r, widths, strict=False)) + r[3]
            )
        return "\n".join(line.rstrip() for line in lines)

    def __rich__(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self._headline(), title_justify="left")
        for h in ("column", "kind", "nullable", "categories"):
            table.add_column(h)
        for r in self._rows():
            table.add_row(*(Text(v) for v in r))  # data, not Rich markup
        return table


# -- inferring ------------------------------------------------------------------------------


def infer_schema(X: Any, y: Any = None, *, max_categories: int = 50) -> ModelSchema:
    """The schema of the data a model is trained on.

    Args:
        X: the training inputs: a pandas DataFrame, a numpy 2-D array (columns named
            ``x0``, ``x1``, …), a polars DataFrame, a pyarrow Table or a file path.
        y: the target, if any; it decides the outputs. Labels that are not numbers, or
            whole numbers with at most ``max_categories`` distinct values, make a
            classifier (``{"kind": "probabilities", "classes": sorted labels}``); other
            numbers a regressor (``{"kind": "values", "dtype": "float"}``).
        max_categories: a text column with at most this many distinct values (each at most
            200 characters) gets them as its categories; above that, any text is accepted.
            A pandas category column always keeps its categories.

    Returns:
        The :class:`ModelSchema`.

    Raises:
        SchemaError: a column cannot be described (mixed types, a bad name), or ``y``
            does not fit ``X``.

    Example:
        >>> import pandas as pd
        >>> s = infer_schema(pd.DataFrame({"age": [30, 41], "plan": ["a", "b"]}), [0, 1])
        >>> [(c.name, c.kind, c.categories) for c in s.inputs], s.outputs["classes"]
        ([('age', 'integer', None), ('plan', 'string', ('a', 'b'))], [0, 1])
    """
    if (
        isinstance(max_categories, bool)
        or not isinstance(max_categories, int)
        or max_categories < 0
    ):
        raise InvalidParameterError(
            f"infer_schema max_categories: got {max_categories!r}; expected a whole number >= 0."
        )
    headline = "Training data cannot give a model schema"
    frame = as_frame(X, what="X", names=None, headline=headline)
    names, dupes, problems = column_names(list(frame.columns), extra="error")
    specs = []
    for i, name in enumerate(names):
        if name is None or name in dupes:
            continue
        spec = _infer_column(name, frame.iloc[:, i], max_categories)
        if isinstance(spec, SchemaProblem):
            problems.append(spec)
        else:
            specs.append(spec)
    if problems:
        raise SchemaError(problems, headline=headline)
    return ModelSchema(inputs=tuple(specs), outputs=_outputs(y, len(frame), max_categories))


def _infer_column(name: str, s: pd.Series, max_categories: int) -> ColumnSpec | SchemaProblem:
    kind = kind_of(s)
    nullable = bool(s.isna().any())
    if kind == "null":  # no values at all: pandas' own choice for such a column is float
        return ColumnSpec(name, "float", nullable=nullable)
    if kind == "other":
        return SchemaProblem(
            name,
            "dtype",
            f"one of the kinds {list(KINDS)}",
            f"dtype {s.dtype}{types_seen(s)}",
            f"Convert it before training, e.g. df[{shown(name)}].astype(str).",
        )
    categories: tuple[Category, ...] | None = None
    if kind == "category":
        values = s.cat.categories.tolist()
        if not all(isinstance(v, str | int | float) for v in values):
            return SchemaProblem(
                name,
                "dtype",
                "categories that are text or numbers",
                f"categories of type {type(values[0]).__name__}",
                f"Make them text before training, e.g. df[{shown(name)}].astype(str)"
                ".astype('category').",
            )
        categories = tuple(values)
    elif kind == "string" and max_categories:
        distinct = s.dropna().unique()
        if len(distinct) <= max_categories:
            values = [str(v) for v in distinct.tolist()]
            if all(len(v) <= _MAX_CATEGORY_CHARS for v in values):
                categories = tuple(sorted(values))
    return ColumnSpec(name, kind, nullable=nullable, categories=categories)


def _outputs(y: Any, rows: int, max_categories: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    if y is None:
        return _unknown_outputs()
    headline = "The target y cannot give the model's outputs"
    if type(y).__module__.split(".")[0] in ("polars", "pyarrow") and hasattr(y, "to_pandas"):
        y = y.to_pandas()
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise SchemaError(
                [input_problem(f"{y.shape[1]} target columns", "one target column", "")],
                headline=headline,
            )
        y = y.iloc[:, 0]
    if not isinstance(y, pd.Series):
        arr = np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise SchemaError(
                [input_problem(f"an array of shape {arr.shape}", "one label per row", "")],
                headline=headline,
            )
        y = pd.Series(arr)
    if len(y) != rows:
        raise SchemaError(
            [input_problem(f"{len(y):,} labels", f"one per row of X ({rows:,})", "")],
            headline=headline,
        )
    kind = kind_of(y)
    values = y.dropna()
    distinct = values.unique()
    if kind in ("integer", "float"):
        numbers = values.to_numpy(dtype="float64")
        whole = bool(np.all(np.isfinite(numbers) & (numbers == np.floor(numbers))))
        if not (whole and len(distinct) <= max_categories):
            return {"kind": "values", "dtype": "float"}
    elif kind not in ("string", "category", "boolean"):
        raise SchemaError(
            [input_problem(f"target values of dtype {y.dtype}", "labels or numbers", "")],
            headline=headline,
        )
    classes = [v.item() if hasattr(v, "item") else v for v in distinct.tolist()]
    try:
        classes.sort()
    except TypeError:  # labels of mixed types: any fixed order will do
        classes.sort(key=repr)
    return {"kind": "probabilities", "classes": classes}


# -- checking -------------------------------------------------------------------------------


def check_input(X: Any, schema: ModelSchema, *, extra: str = "drop") -> pd.DataFrame:
    """``X`` as the model's training frame: its columns, in its order, in its dtypes.

    Args:
        X: a pandas DataFrame, a dict (one record) or a list of dicts (one row each), a
            numpy 2-D array (the schema's columns, in order), a polars DataFrame, a
            pyarrow Table or a file path.
        schema: the model's :class:`ModelSchema`.
        extra: ``"drop"`` columns the schema does not have, or ``"error"`` on them.

    Returns:
        A pandas DataFrame with exactly the schema's columns, with X's index.

    Raises:
        SchemaError: every problem found, at once (see the module docstring for the rules).

    Example:
        >>> s = ModelSchema((ColumnSpec("age", "float", nullable=False),))
        >>> check_input([{"age": 3, "name": "x"}], s).dtypes.to_dict()
        {'age': dtype('float64')}
    """
    import pandas as pd

    if extra not in ("drop", "error"):
        raise InvalidParameterError(
            f"check_input extra: got {extra!r}; expected 'drop' or 'error'."
            f"{did_you_mean(str(extra), ['drop', 'error'])}"
        )
    if not isinstance(schema, ModelSchema):
        raise InvalidParameterError(
            f"check_input schema: got {type(schema).__name__}; expected a ModelSchema. Make one "
            "with infer_schema(X_train, y_train), or ModelSchema.from_dict(d)."
        )
    frame = as_frame(X, what="X", names=schema.names, headline="Input does not fit the model")
    wanted = set(schema.names)
    names, dupes, problems = column_names(list(frame.columns), extra=extra, wanted=wanted)
    where = {n: i for i, n in enumerate(names) if n is not None and n not in dupes}
    absent = [n for n in schema.names if n not in where and n not in dupes]
    unwanted = [n for n in where if n not in wanted]
    if absent:
        problems.insert(0, absent_problem(absent, unwanted, len(schema.inputs)))
    if unwanted and extra == "error":
        problems.append(
            SchemaProblem(
                None,
                "extra_columns",
                "only the model's input columns",
                f"{len(unwanted)} other column{'s' if len(unwanted) != 1 else ''}: "
                f"{short(unwanted, 200)}",
                "Drop them, or pass extra='drop'.",
            )
        )
    out: dict[str, pd.Series] = {}
    for spec in schema.inputs:
        if spec.name in where:
            column, found = coerce(frame.iloc[:, where[spec.name]], spec)
            problems += found
            out[spec.name] = column
    if problems:
        raise SchemaError(problems)
    return pd.DataFrame(out, index=frame.index, columns=schema.names)


# -- reading a stored schema ----------------------------------------------------------------

_INPUT_KEYS = ("name", "kind", "nullable", "categories")


def _parse(d: Mapping[str, Any]) -> ModelSchema:
    def fail(path: str, value: Any, rule: str, hint: str = "") -> InvalidParameterError:
        return InvalidParameterError(
            f"Model schema {path}: got {short(value)}; expected {rule}.{hint}"
        )

    if not isinstance(d, Mapping):
        raise fail("", d, "a dict written by ModelSchema.to_dict()")
    for key in d:
        if key not in ("format", "inputs", "outputs"):
            raise fail(
                repr(key),
                d[key],
                "only the keys format, inputs, outputs",
                did_you_mean(str(key), ("format", "inputs", "outputs")),
            )
    if d.get("format") != FORMAT:
        raise fail(
            "format", d.get("format"), f"{FORMAT}", " Upgrade loopml to read a newer schema."
        )
    raw = d.get("inputs")
    if not isinstance(raw, list):
        raise fail("inputs", raw, "a list of columns")
    inputs = []
    for i, c in enumerate(raw):
        path = f"inputs[{i}]"
        if not isinstance(c, Mapping):
            raise fail(path, c, "a dict with name, kind, nullable, categories")
        for key in c:
            if key not in _INPUT_KEYS:
                raise fail(
                    f"{path} key {key!r}",
                    c[key],
                    f"one of the keys {list(_INPUT_KEYS)}",
                    did_you_mean(str(key), _INPUT_KEYS),
                )
        name, kind, nullable, cats = (c.get(k) for k in _INPUT_KEYS)
        if not isinstance(name, str):
            raise fail(f"{path}.name", name, "text")
        if kind not in KINDS:
            raise fail(
                f"{path}.kind", kind, f"one of {list(KINDS)}", did_you_mean(str(kind), KINDS)
            )
        if not isinstance(nullable, bool):
            raise fail(f"{path}.nullable", nullable, "true or false")
        if cats is not None and (
            not isinstance(cats, list) or not all(isinstance(v, str | int | float) for v in cats)
        ):
            raise fail(f"{path}.categories", cats, "a list of text or numbers, or null")
        inputs.append(ColumnSpec(name, kind, nullable, None if cats is None else tuple(cats)))
    outputs = d.get("outputs")
    if not isinstance(outputs, Mapping) or outputs.get("kind") not in OUTPUT_KINDS:
        raise fail("outputs", outputs, f'a dict with "kind" one of {list(OUTPUT_KINDS)}')
    try:
        return ModelSchema(inputs=tuple(inputs), outputs=dict(outputs))
    except InvalidParameterError as exc:
        raise fail("inputs", [c.name for c in inputs], "unique column names") from exc
