"""A model version's input schema: inference, the JSON form, and the check of new input.

The model tests train real scikit-learn, XGBoost and LightGBM models on bundled data (no
downloads), store the schema through JSON, and predict on what ``check_input`` returns.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.data.schema import DTYPES
from loopml.errors import InvalidParameterError
from loopml.registry.schema import (
    KINDS,
    ColumnSpec,
    ModelSchema,
    SchemaError,
    SchemaProblem,
    check_input,
    infer_schema,
)


def through_json(schema: ModelSchema) -> ModelSchema:
    return ModelSchema.from_dict(json.loads(json.dumps(schema.to_dict())))


def problems(exc: pytest.ExceptionInfo[SchemaError]) -> dict[tuple[str | None, str], SchemaProblem]:
    return {(p.column, p.rule): p for p in exc.value.problems}


def mixed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([30, 41, 52, 28], dtype="int32"),
            "income": [1.5, 2.5, None, 4.0],
            "plan": ["basic", "pro", "basic", "team"],
            "region": pd.Categorical(["north", "south", "south", "east"]),
            "active": [True, False, True, True],
            "since": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]),
        }
    )


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    return data.data, data.target


@pytest.fixture(scope="module")
def with_category(cancer: tuple[pd.DataFrame, pd.Series]) -> tuple[pd.DataFrame, pd.Series]:
    """Breast cancer plus a category column that carries signal (so trees split on it)."""
    X, y = cancer
    X = X.iloc[:, :8].copy()
    size = pd.cut(X["mean area"], [0, 400, 700, 1000, 10_000], labels=["s", "m", "l", "xl"])
    X["size"] = pd.Categorical(size.astype(str), categories=["xl", "l", "m", "s"])
    return X, y


# -- inference ------------------------------------------------------------------------------


def test_kinds_share_the_data_layer_words() -> None:
    assert KINDS[:4] == DTYPES[:4] == ("integer", "float", "boolean", "string")


def test_infer_records_kinds_nullability_and_categories() -> None:
    schema = infer_schema(mixed(), ["no", "yes", "no", "no"])
    got = {c.name: (c.kind, c.nullable, c.categories) for c in schema.inputs}
    assert got == {
        "age": ("integer", False, None),
        "income": ("float", True, None),
        "plan": ("string", False, ("basic", "pro", "team")),
        "region": ("category", False, ("east", "north", "south")),
        "active": ("boolean", False, None),
        "since": ("datetime", False, None),
    }
    assert schema.outputs == {"kind": "probabilities", "classes": ["no", "yes"]}
    assert through_json(schema) == schema
    assert schema.to_dict() == through_json(schema).to_dict()  # stable


def test_category_column_keeps_its_order_and_typed_categories() -> None:
    X = pd.DataFrame(
        {"c": pd.Categorical(["b", "a"], categories=["b", "a"]), "n": pd.Categorical([3, 1])}
    )
    schema = through_json(infer_schema(X, max_categories=0))
    assert [c.categories for c in schema.inputs] == [("b", "a"), (1, 3)]


def test_max_categories_and_free_text() -> None:
    X = pd.DataFrame({"few": ["a", "b"] * 3, "many": list("abcdef"), "long": ["x" * 500] * 6})
    schema = infer_schema(X, max_categories=3)
    assert [c.categories for c in schema.inputs] == [("a", "b"), None, None]
    assert check_input(
        pd.DataFrame({"few": ["a"], "many": ["zzz"], "long": ["y"]}), schema
    ).shape == (1, 3)


@pytest.mark.parametrize(
    ("y", "outputs"),
    [
        (None, {"kind": "unknown"}),
        ([0, 1, 1, 0], {"kind": "probabilities", "classes": [0, 1]}),
        (np.array([2.0, 1.0, 1.0, 3.0]), {"kind": "probabilities", "classes": [1.0, 2.0, 3.0]}),
        ([True, False, True, True], {"kind": "probabilities", "classes": [False, True]}),
        (pd.Series(["b", "a", None, "a"]), {"kind": "probabilities", "classes": ["a", "b"]}),
        ([0.5, 1.25, 2.0, 3.0], {"kind": "values", "dtype": "float"}),
        (pd.DataFrame({"t": [0.5, 1.0, 2.0, 3.0]}), {"kind": "values", "dtype": "float"}),
    ],
)
def test_outputs_from_y(y: Any, outputs: dict[str, Any]) -> None:
    schema = infer_schema(mixed(), y)
    assert schema.outputs == outputs
    assert through_json(schema).outputs == outputs


def test_many_whole_numbers_are_values() -> None:
    assert (
        infer_schema(np.zeros((100, 1)), np.arange(100), max_categories=50).outputs["kind"]
        == "values"
    )


@pytest.mark.parametrize(
    ("y", "text"),
    [
        ([0, 1], "got 2 labels; expected one per row of X (4)"),
        (np.zeros((4, 2)), "got an array of shape (4, 2); expected one label per row"),
        (pd.DataFrame({"a": [1] * 4, "b": [2] * 4}), "got 2 target columns"),
    ],
)
def test_y_that_does_not_fit(y: Any, text: str) -> None:
    with pytest.raises(SchemaError, match="The target y") as exc:
        infer_schema(mixed(), y)
    assert text in str(exc.value)


def test_numpy_polars_and_arrow_inputs() -> None:
    import polars as pl
    import pyarrow as pa

    assert infer_schema(np.ones((3, 2))).names == ["x0", "x1"]
    table = pa.table({"n": [1, None, 3], "s": ["a", "b", None]})
    for X in (table, pl.from_arrow(table)):
        got = [(c.name, c.kind, c.nullable) for c in infer_schema(X).inputs]
        assert got == [("n", "integer", True), ("s", "string", True)]
    schema = infer_schema(table)
    out = check_input(pl.DataFrame({"s": ["b"], "n": [7]}), schema)
    assert out.to_dict("list") == {"n": [7], "s": ["b"]}
    assert str(out["n"].dtype) == "Int64"


def test_training_data_that_cannot_give_a_schema() -> None:
    X = pd.DataFrame({"mix": [1, "a", 2.5], "ok": [1, 2, 3], "dup": [1, 2, 3]})
    X.insert(3, "dup", [4, 5, 6], allow_duplicates=True)
    with pytest.raises(SchemaError, match="Training data cannot give a model schema") as exc:
        infer_schema(X)
    found = problems(exc)
    assert "holding values of the types ['float', 'int', 'str']" in found[("mix", "dtype")].got
    assert found[("dup", "column_name")].got == "2 columns with this name"


def test_bad_max_categories() -> None:
    with pytest.raises(InvalidParameterError, match="max_categories: got -1"):
        infer_schema(mixed(), max_categories=-1)


# -- the stored form ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"format": 2}, "format: got 2; expected 1. Upgrade loopml"),
        ({"inputz": []}, "Did you mean 'inputs'?"),
        ({"inputs": [{"name": "a", "kind": "flaot", "nullable": False}]}, "Did you mean 'float'?"),
        ({"inputs": [{"name": 1, "kind": "float", "nullable": False}]}, "inputs[0].name: got 1"),
        ({"inputs": [{"name": "a", "kind": "float", "nullable": "no"}]}, "true or false"),
        ({"outputs": {"kind": "labels"}}, "outputs: got {'kind': 'labels'}"),
    ],
)
def test_from_dict_names_the_mistake(change: dict[str, Any], text: str) -> None:
    d = {**infer_schema(mixed()).to_dict(), **change}
    with pytest.raises(InvalidParameterError) as exc:
        ModelSchema.from_dict(d)
    assert text in str(exc.value)


def test_views() -> None:
    schema = infer_schema(mixed(), [0, 1, 0, 1])
    text = str(schema)
    assert text.splitlines()[0] == "ModelSchema: 6 inputs; outputs: probabilities of classes [0, 1]"
    assert "  plan    string    no        ['basic', 'pro', 'team']" in text
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(schema)
    shown = console.export_text()
    assert "│ region │ category │ no       │ ['east', 'north', 'south'] │" in shown


def test_schema_error_is_a_value_error_and_pickles() -> None:
    with pytest.raises(ValueError) as exc:
        check_input({}, infer_schema(mixed()))
    assert isinstance(exc.value, SchemaError) and isinstance(exc.value, InvalidParameterError)
    again = pickle.loads(pickle.dumps(exc.value))
    assert str(again) == str(exc.value) and again.problems == exc.value.problems


# -- the check: coercions -------------------------------------------------------------------


def test_good_input_comes_back_in_schema_order_and_dtypes() -> None:
    schema = through_json(infer_schema(mixed()))
    batch = mixed().iloc[::-1].assign(extra=1)[["extra", *reversed(schema.names)]]
    out = check_input(batch, schema)
    assert list(out.columns) == schema.names
    assert list(out.index) == [3, 2, 1, 0]
    assert out["age"].dtype == "int64" and out["income"].dtype == "float64"
    assert list(out["region"].cat.categories) == ["east", "north", "south"]
    with pytest.raises(SchemaError, match="1 other column: \\['extra'\\]"):
        check_input(batch, schema, extra="error")
    with pytest.raises(InvalidParameterError, match="Did you mean 'drop'"):
        check_input(batch, schema, extra="dorp")


def test_records_as_a_rest_request_sends_them() -> None:
    schema = infer_schema(mixed())
    record = {"age": 3.0, "income": None, "plan": "pro", "region": "east", "active": True}
    record["since"] = "2024-05-01T12:30:00"
    out = check_input([record, {**record, "age": 7}], schema)
    assert out["age"].tolist() == [3, 7] and out["age"].dtype == "int64"
    assert out["region"].dtype == pd.CategoricalDtype(["east", "north", "south"])
    assert out["since"].iloc[0] == pd.Timestamp("2024-05-01 12:30")
    assert check_input(record, schema).shape == (1, 6)


@pytest.mark.parametrize(
    ("kind", "values", "dtype"),
    [
        ("float", np.array([1, 2], dtype="uint8"), "float64"),
        ("float", pd.array([1.5, None], dtype="Float64"), "float64"),
        ("integer", np.array([1, 2], dtype="int16"), "int64"),
        ("integer", pd.array([1, 2], dtype="Int32"), "int64"),
        ("integer", [1.0, 2.0], "int64"),
        ("boolean", pd.array([True, False], dtype="boolean"), "bool"),
        ("string", pd.Categorical(["a", "b"]), "object"),
        ("category", ["b", "a"], "category"),
    ],
)
def test_safe_coercions(kind: str, values: Any, dtype: str) -> None:
    nullable = kind == "float"
    schema = ModelSchema(
        (ColumnSpec("c", kind, nullable, ("a", "b") if kind == "category" else None),)
    )
    out = check_input(pd.DataFrame({"c": values}), schema)
    assert str(out["c"].dtype) == dtype


@pytest.mark.parametrize(
    ("kind", "values", "got"),
    [
        (
            "float",
            ["1.5", "abc"],
            "text (dtype str) in 2 of 2 rows: '1.5' at row 0, 'abc' at row 1",
        ),
        ("float", [True, False], "boolean values (dtype bool)"),
        ("float", [1.5, "x"], "values of mixed types (dtype object) in 1 of 2 rows: 'x' at row 1"),
        (
            "integer",
            [1.0, 2.5],
            "numbers with fractions (dtype float64) in 1 of 2 rows: 2.5 at row 1",
        ),
        ("integer", [1.0, float("inf")], "in 1 of 2 rows: inf at row 1"),
        ("boolean", [1, 0], "integer values (dtype int64)"),
        ("string", [1, 2], "integer values"),
        ("datetime", ["2024-01-01", "01/13/2024 noon"], "text that is not ISO 8601"),
        ("category", [1, 2], "integer values"),
    ],
)
def test_unsafe_coercions_are_errors(kind: str, values: list[Any], got: str) -> None:
    schema = ModelSchema((ColumnSpec("c", kind, False, ("a",) if kind == "category" else None),))
    with pytest.raises(SchemaError) as exc:
        check_input(pd.DataFrame({"c": pd.Series(values)}), schema)
    problem = problems(exc)[("c", "dtype")]
    assert got in problem.got
    assert problem.expected.startswith(kind)
    assert "column 'c': got" in str(exc.value)


@pytest.mark.parametrize("gap", [np.nan, None, pd.NA])
def test_nan_none_and_na_are_all_missing(gap: Any) -> None:
    specs = [("f", "float"), ("s", "string"), ("i", "integer"), ("b", "boolean"), ("c", "category")]
    strict = ModelSchema(
        tuple(ColumnSpec(n, k, False, ("a", "c") if k == "category" else None) for n, k in specs)
    )
    batch = pd.DataFrame(
        {"f": [1.0, gap, 3.0], "s": ["a", gap, "c"], "i": [1, gap, 3], "b": [True, gap, False]},
        dtype=object,
    ).assign(c=lambda d: d["s"])
    with pytest.raises(SchemaError) as exc:
        check_input(batch, strict)
    assert len(exc.value.problems) == 5
    for name, _ in specs:
        p = problems(exc)[(name, "missing_values")]
        assert p.got == "1 missing value (NaN/None/NA) of 3 rows, at row 1" and p.rows == (1,)
        assert f"df[{name!r}].fillna" in p.fix
    loose = ModelSchema(
        tuple(ColumnSpec(c.name, c.kind, True, c.categories) for c in strict.inputs)
    )
    out = check_input(batch, loose)
    assert out.dtypes.astype(str).tolist() == ["float64", "object", "Int64", "boolean", "category"]
    assert out.isna().sum().tolist() == [1] * 5
    assert batch["i"].dtype == object  # the input is not changed


def test_inputs_that_are_not_tables() -> None:
    schema = ModelSchema((ColumnSpec("a", "float", False),))
    with pytest.raises(SchemaError, match="got X of type pandas.Series; expected a dict"):
        check_input(pd.Series([1.0], index=["a"]), schema)
    with pytest.raises(SchemaError, match="a 2-D array"):
        check_input(np.ones(3), schema)
    with pytest.raises(InvalidParameterError, match="expected a ModelSchema"):
        check_input({"a": 1.0}, schema.to_dict())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("a", "flaot", False), "kind: got 'flaot'"),
        (("a", "float", "no"), "nullable: got 'no'; expected True or False"),
        ((1, "float", False), "name: got 1; expected text"),
    ],
)
def test_column_spec_checks_its_fields(args: tuple[Any, ...], text: str) -> None:
    with pytest.raises(InvalidParameterError, match=text):
        ColumnSpec(*args)


def test_unseen_categories_are_counted_with_the_known_ones() -> None:
    schema = infer_schema(mixed())
    batch = mixed()
    batch["plan"] = ["gold", "gold", "Pro", "basic"]
    batch["region"] = pd.Categorical(["west", "north", "north", "south"])
    with pytest.raises(SchemaError) as exc:
        check_input(batch, schema)
    plan = problems(exc)[("plan", "unseen_categories")]
    assert plan.got == "2 unseen values in 3 rows: 'gold' (2 rows), 'Pro' (1 row)"
    assert plan.expected == "one of the 3 categories seen in training: ['basic', 'pro', 'team']"
    assert plan.rows == (0, 1, 2)
    region = problems(exc)[("region", "unseen_categories")]
    assert region.got == "1 unseen value in 1 row: 'west' (1 row)" and region.rows == (0,)


def test_missing_columns_are_named_at_once_with_renames() -> None:
    schema = infer_schema(mixed())
    with pytest.raises(SchemaError) as exc:
        check_input(
            mixed().rename(columns={"age": "Age", "plan": "plans"}).drop(columns="since"), schema
        )
    p = problems(exc)[(None, "missing_columns")]
    assert p.got == "3 missing columns: ['age', 'plan', 'since']"
    assert p.fix == "Add them to the input. Perhaps rename: 'Age' -> 'age', 'plans' -> 'plan'."
    assert str(exc.value).startswith("Input does not fit the model (1 problem):\n  - input: got 3")


def test_a_numpy_array_takes_the_schema_columns_in_order() -> None:
    schema = ModelSchema((ColumnSpec("a", "float", False), ColumnSpec("b", "float", False)))
    assert check_input(np.ones((2, 2)), schema).columns.tolist() == ["a", "b"]
    with pytest.raises(SchemaError, match="got X, an array of 3 columns; expected 2 columns"):
        check_input(np.ones((2, 3)), schema)


def test_records_that_are_not_dicts() -> None:
    with pytest.raises(SchemaError, match="record 1 of type int: 5; expected a list of dicts"):
        check_input([{"a": 1}, 5], ModelSchema((ColumnSpec("a", "float", False),)))


# -- hostile input --------------------------------------------------------------------------


def test_zero_rows_is_a_valid_empty_batch() -> None:
    schema = infer_schema(mixed())
    expected = check_input(mixed(), schema).dtypes.astype(str).tolist()
    for empty in (mixed().iloc[:0], [], pd.DataFrame({n: [] for n in schema.names})):
        out = check_input(empty, schema)
        assert out.shape == (0, 6) and out.columns.tolist() == schema.names
        got = out.dtypes.astype(str).tolist()
        assert [g.split("[")[0] for g in got] == [e.split("[")[0] for e in expected]


def test_column_names_that_are_not_text() -> None:
    X = pd.DataFrame(np.arange(6.0).reshape(3, 2))  # columns 0 and 1
    schema = through_json(infer_schema(X))
    assert schema.names == ["0", "1"]
    assert check_input(pd.DataFrame({"1": [1.0], 0: [2.0]}), schema).columns.tolist() == ["0", "1"]
    with pytest.raises(SchemaError, match="column '1': got 2 columns with this name"):
        check_input(pd.DataFrame([[1.0, 2.0, 3.0]], columns=[0, 1, "1"]), schema)


def test_duplicated_names_only_matter_when_read() -> None:
    schema = ModelSchema((ColumnSpec("a", "float", False),))
    batch = pd.DataFrame([[1.0, 2, 3]], columns=["a", "z", "z"])
    assert check_input(batch, schema).columns.tolist() == ["a"]
    with pytest.raises(SchemaError, match="column 'z': got 2 columns"):
        check_input(batch, schema, extra="error")


@pytest.mark.parametrize("label", ["bad\udcff", b"\xff\xfe"])
def test_column_names_that_are_not_utf8(label: Any) -> None:
    schema = ModelSchema((ColumnSpec("a", "float", False),))
    with pytest.raises(SchemaError) as exc:
        check_input(
            pd.DataFrame([[1.0, 2.0]], columns=pd.Index(["a", label], dtype=object)), schema
        )
    p = problems(exc)[(None, "column_name")]
    assert p.got == f"the column name {label!r}" and "valid UTF-8" in p.expected
    json.dumps(str(exc.value))  # the message itself is safe to send
    with pytest.raises(SchemaError, match="Training data cannot"):
        infer_schema(pd.DataFrame([[1.0]], columns=pd.Index([label], dtype=object)))


def test_huge_strings_are_cut_in_messages() -> None:
    schema = ModelSchema(
        (ColumnSpec("f", "float", False), ColumnSpec("s", "string", False, ("a",)))
    )
    huge = "x" * 1_000_000
    with pytest.raises(SchemaError) as exc:
        check_input(pd.DataFrame({"f": [huge], "s": [huge]}), schema)
    assert len(str(exc.value)) < 1_500
    assert "'xxxxxxxxx" in problems(exc)[("s", "unseen_categories")].got


# -- models ---------------------------------------------------------------------------------


def test_sklearn_on_breast_cancer(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    schema = through_json(infer_schema(X, y))
    assert schema.outputs == {"kind": "probabilities", "classes": [0, 1]}
    assert {c.kind for c in schema.inputs} == {"float"}
    batch = X.iloc[:50, ::-1].assign(request_id=range(50))
    out = check_input(batch, schema)
    np.testing.assert_array_equal(model.predict(out), model.predict(X.iloc[:50]))
    records = json.loads(X.iloc[:3].to_json(orient="records"))
    assert (
        model.predict(check_input(records, schema)).tolist() == model.predict(X.iloc[:3]).tolist()
    )

    bad = X.iloc[:20].astype({"mean radius": object})
    bad.iloc[[3, 7], 0] = ["n/a", "12,5"]
    bad.iloc[4, 2] = np.nan
    bad = bad.drop(columns=["worst area", "worst symmetry"])
    with pytest.raises(SchemaError) as exc:
        check_input(bad, schema)
    text = str(exc.value)
    assert text.startswith("Input does not fit the model (3 problems):")
    assert "got 2 missing columns: ['worst area', 'worst symmetry']" in text
    assert (
        "column 'mean radius': got values of mixed types (dtype object) in 2 of 20 rows: 'n/a' at row 3, '12,5' at row 7"
        in text
    )
    assert "pd.to_numeric(df['mean radius'])" in text
    assert "column 'mean perimeter': got 1 missing value (NaN/None/NA) of 20 rows, at row 4" in text


def test_xgboost_with_a_category_column(with_category: tuple[pd.DataFrame, pd.Series]) -> None:
    import xgboost as xgb

    X, y = with_category
    model = xgb.XGBClassifier(
        n_estimators=20, max_depth=3, enable_categorical=True, tree_method="hist"
    )
    model.fit(X, y)
    schema = through_json(infer_schema(X, y))
    assert schema.inputs[-1] == ColumnSpec("size", "category", False, ("xl", "l", "m", "s"))
    expected = model.predict_proba(X)
    # the same values with the categories in another order come back with training's codes
    shuffled = X.assign(size=X["size"].cat.reorder_categories(["s", "m", "l", "xl"]))
    out = check_input(shuffled, schema)
    assert (out["size"].cat.codes == X["size"].cat.codes).all()
    np.testing.assert_allclose(model.predict_proba(out), expected)
    # text, as JSON sends it, becomes the category XGBoost needs (it refuses text columns)
    as_text = X.assign(size=X["size"].astype(str))
    with pytest.raises(ValueError, match="category"):
        model.predict_proba(as_text)
    np.testing.assert_allclose(model.predict_proba(check_input(as_text, schema)), expected)
    with pytest.raises(SchemaError, match="'xxl' \\(1 row\\)"):
        check_input(X.assign(size=["xxl"] + ["s"] * (len(X) - 1)), schema)


def test_lightgbm_from_records(with_category: tuple[pd.DataFrame, pd.Series]) -> None:
    import lightgbm as lgb

    X, y = with_category
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(X, y)
    schema = through_json(infer_schema(X, y))
    records = json.loads(
        X.iloc[:40].assign(size=X["size"].iloc[:40].astype(str)).to_json(orient="records")
    )
    out = check_input(records, schema)
    np.testing.assert_allclose(model.predict_proba(out), model.predict_proba(X.iloc[:40]))
    records[5]["size"] = None
    records[6].pop("mean area")
    with pytest.raises(SchemaError) as exc:
        check_input(records, schema)
    assert problems(exc)[("size", "missing_values")].rows == (5,)
    assert problems(exc)[("mean area", "missing_values")].rows == (6,)


# -- speed and import cost ------------------------------------------------------------------


def test_check_of_a_million_rows(capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    columns: dict[str, Any] = {f"f{i}": rng.normal(size=n) for i in range(14)}
    columns |= {f"i{i}": rng.integers(0, 100, size=n) for i in range(3)}
    columns["plan"] = pd.Series(rng.choice(["basic", "pro", "team"], size=n), dtype="str")
    columns["region"] = pd.Categorical.from_codes(rng.integers(0, 4, size=n), ["n", "s", "e", "w"])
    columns["active"] = rng.random(n) > 0.5
    frame = pd.DataFrame(columns)
    schema = infer_schema(frame.head(10_000))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        out = check_input(frame, schema)
        best = min(best, time.perf_counter() - start)
    assert out.shape == (n, 20)
    with capsys.disabled():
        print(f"\ncheck_input: {n:,} rows x 20 columns in {best:.3f} s (best of 3)")


def test_importing_the_module_loads_no_table_library() -> None:
    code = (
        "import sys, loopml.registry.schema\n"
        "print(sorted({'numpy', 'pandas', 'pyarrow', 'polars', 'rich'} & set(sys.modules)))"
    )
    src = str(Path(__file__).parents[2] / "src")
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
