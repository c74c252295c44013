"""Validation: inference from a reference, each expectation's counts and example rows, inputs."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.data.errors import ValidationError
from loopml.data.schema import ColumnSchema, Schema, TableSchema
from loopml.data.validate import infer_schema, validate
from loopml.data.validate_report import ValidationReport, Violation
from loopml.errors import InvalidParameterError, LoopmlError


def reference() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "age": [20, 30, 40, 50, 60],
            "score": [0.5, 1.0, np.nan, 2.0, 2.5],
            "city": ["Oslo", "Bergen", "Oslo", "Tromsø", "Bergen"],
            "ok": [True, False, True, True, False],
        }
    )


def only(report: ValidationReport, expectation: str) -> Violation:
    found = [v for v in report.violations if v.expectation == expectation]
    assert len(found) == 1, report
    return found[0]


def rows(v: Violation) -> list[int]:
    return [e["row"] for e in v.examples]


# -- inference ------------------------------------------------------------------------------


def test_inference_reads_dtypes_missing_ranges_categories_and_key() -> None:
    schema = infer_schema(reference(), tolerance=0.1, key="id")
    assert schema == Schema(
        table=TableSchema(columns="exact", order=True, min_rows=1, max_rows=None, key=("id",)),
        columns=(
            ColumnSchema("id", "integer", min=0, max=6),  # 1..5 widened by 0.4, outward
            ColumnSchema("age", "integer", min=16, max=64),
            ColumnSchema("score", "float", max_missing=0.22, min=0.3, max=2.7),  # 1 in 5 missing
            ColumnSchema("city", "string", categories=("Bergen", "Oslo", "Tromsø")),
            ColumnSchema("ok", "boolean"),
        ),
    )
    assert validate(reference(), schema).ok


def test_inference_options() -> None:
    frame = pd.DataFrame({"name": ["a", "b", "c"], "x": [1.0, 1.0, 1.0]})
    schema = infer_schema(frame, tolerance=0, max_categories=2)
    assert schema.column("name").categories is None  # three values > max_categories
    assert (schema.column("x").min, schema.column("x").max) == (1.0, 1.0)
    empty = infer_schema(frame.iloc[:0])
    assert empty.table.min_rows == 0
    assert empty.column("x").min is None
    nothing = infer_schema(pa.table({"n": pa.nulls(3)}))
    assert nothing.column("n").dtype == "null"
    assert Schema.from_toml(nothing.to_toml()) == nothing


def test_a_reference_always_passes_its_own_schema() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    floats = st.floats(allow_subnormal=True) | st.sampled_from([0.1, 1e-300, 1e300, 5e-324])
    ints = st.integers(-(2**63), 2**63 - 1)

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(floats, min_size=1, max_size=20),
        st.lists(ints, min_size=1, max_size=20),
        st.sampled_from([0, 1e-300, 0.05, 0.1, 3.0]),
    )
    def check_own(xs: list[float], ns: list[int], tolerance: float) -> None:
        for table in (pa.table({"x": xs}), pa.table({"n": ns})):
            schema = infer_schema(table, tolerance=tolerance)
            report = validate(table, Schema.from_toml(schema.to_toml()), raise_on_error=False)
            assert report.ok, (report, schema)

    check_own()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"tolerance": -1}, "tolerance: got -1"),
        ({"tolerance": "big"}, "tolerance: got 'big'"),
        ({"max_categories": 1.5}, "max_categories: got 1.5"),
        ({"key": "idd"}, "Did you mean 'id'?"),
        ({"key": "city"}, "got 4 reference rows sharing key values"),
    ],
)
def test_inference_refuses_bad_arguments(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        infer_schema(reference(), **kwargs)
    assert words in str(caught.value)


# -- the TOML file --------------------------------------------------------------------------

HOSTILE = [
    'a"b',
    "ünïcødé ✓",
    "a.b",
    "a=b",
    "",
    "line\nbreak",
    "back\\slash",
    "[x]",
    "'",
    "\x00\x7f",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_toml_round_trip_with_hostile_names(name: str) -> None:
    import tomllib

    frame = pd.DataFrame({name: ["x", 'q"uote', "ü"], "v": [0.1, 1e300, -5e-324]})
    schema = infer_schema(frame, key=name)
    text = schema.to_toml()
    doc = tomllib.loads(text)
    assert list(doc["columns"]) == [name, "v"]
    assert Schema.from_toml(text) == schema
    assert validate(frame, Schema.from_toml(text)).ok


def test_toml_round_trip_of_every_field(tmp_path: Path) -> None:
    schema = Schema(
        table=TableSchema(
            columns="superset",
            order=False,
            min_rows=None,
            max_rows=10,
            key=("a", "b"),
            severity={"default": "warn", "key": "error"},
        ),
        columns=(
            ColumnSchema("a", "integer", max_missing=0.5, min=-3, max=None),
            ColumnSchema("b", "float", min=-math.inf, max=math.inf, severity={"default": "warn"}),
            ColumnSchema(
                "c",
                "string",
                categories=("x", "y\t"),
                severity={"default": "error", "categories": "warn"},
            ),
        ),
    )
    assert Schema.load(schema.save(tmp_path / "s.toml")) == schema
    assert "# allowed values seen in the reference; add new ones here" in schema.to_toml()


def test_toml_round_trip_property() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    floats = st.floats(allow_nan=False)
    column = st.builds(
        ColumnSchema,
        name=st.text(max_size=12),
        dtype=st.sampled_from(["integer", "float", "string"]),
        max_missing=st.floats(0, 1),
        min=st.none() | floats | st.integers(-(2**63), 2**63 - 1),
        max=st.none() | floats,
        categories=st.none() | st.lists(st.text(max_size=8), max_size=4).map(tuple),
    )

    @settings(max_examples=150, deadline=None)
    @given(st.lists(column, max_size=4, unique_by=lambda c: c.name))
    def check(columns: list[ColumnSchema]) -> None:
        schema = Schema(columns=tuple(columns))
        assert Schema.from_toml(schema.to_toml()) == schema

    check()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[table\n", "not valid TOML"),
        (
            '[columns."age"]\ndtype = "integer"\nmin = "0"\n',
            "[columns.\"age\"] min: got '0'; expected a number",
        ),
        ('[columns."age"]\ndtype = "integer"\nmaxx = 3\n', "Did you mean 'max'?"),
        ('[columns."age"]\ndtype = "int"\n', "expected one of ['integer'"),
        ('[columns."age"]\nmin = 0\n', '[columns."age"] dtype: got None'),
        ('[columns."age"]\ndtype = "integer"\nmax_missing = 2\n', "expected a number from 0 to 1"),
        (
            '[columns."age"]\ndtype = "integer"\nseverity = { rnage = "warn" }\n',
            "Did you mean 'range'?",
        ),
        (
            '[columns."age"]\ndtype = "integer"\nseverity = "fatal"\n',
            "got 'fatal'; expected one of ['error', 'warn']",
        ),
        ('[table]\ncolumns = "exactly"\n', "Did you mean 'exact'?"),
        ("[table]\nrows = { min = -1 }\n", "[table] rows.min: got -1"),
        ('[table]\nkey = "id"\n', "[table] key: got 'id'; expected a list"),
        ('[table]\nkey = ["id"]\n', "[table] key: got 'id'; expected a column"),
        ("[tabel]\n", "Did you mean 'table'?"),
        ("columns = 3\n", "[columns]: got 3; expected a table"),
    ],
)
def test_bad_schema_files_name_the_file_path_value_and_fix(
    tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "turbines.schema.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidParameterError) as caught:
        validate(reference(), path)
    assert words in str(caught.value)
    assert "turbines.schema.toml" in str(caught.value)


def test_a_missing_schema_file_or_wrong_object_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="does not exist"):
        Schema.load(tmp_path / "nope.toml")
    with pytest.raises(InvalidParameterError, match="expected a Schema"):
        validate(reference(), {"columns": {}})


# -- each expectation -----------------------------------------------------------------------


def check(frame: Any, schema: Schema) -> ValidationReport:
    return validate(frame, schema, raise_on_error=False)


def test_range_counts_every_row_and_shows_five_examples() -> None:
    schema = Schema(columns=(ColumnSchema("x", "integer", min=0, max=10),))
    values = [5, -1, 11, 3, 20, -7, 8, 12, 100, 4]
    v = only(check(pd.DataFrame({"x": values}), schema), "range")
    assert (v.count, v.observed, v.expected) == (6, [-7, 100], [0, 10])
    assert rows(v) == [1, 2, 4, 5, 7]
    assert [e["values"]["x"] for e in v.examples] == [-1, 11, 20, -7, 12]


def test_missing_values_null_and_nan_count_alike() -> None:
    schema = Schema(columns=(ColumnSchema("x", "float", max_missing=0.25),))
    frame = pl.DataFrame({"x": [1.0, None, float("nan"), 2.0, None]})  # polars keeps NaN
    v = only(check(frame, schema), "missing")
    assert (v.count, v.observed, v.expected, rows(v)) == (3, 0.6, 0.25, [1, 2, 4])
    assert [e["values"]["x"] for e in v.examples] == [None, None, None]
    assert check(pl.DataFrame({"x": [1.0, None, 2.0, 3.0]}), schema).ok  # 25 % is allowed


@pytest.mark.parametrize(
    ("values", "low", "high", "count"),
    [
        (pa.array([0, 200, 255], pa.uint8()), -5, 2**70, 0),
        (pa.array([0, 200, 255], pa.uint8()), 300, None, 3),
        (pa.array([2**62, 2**63 - 1], pa.int64()), None, 2**62, 1),
        (pa.array([1, 5], pa.int32()), 1.5, 4.5, 2),
    ],
)
def test_bounds_beyond_the_column_type(
    values: pa.Array, low: int | None, high: int | None, count: int
) -> None:
    schema = Schema(columns=(ColumnSchema("x", "integer", min=low, max=high),))
    report = check(pa.table({"x": values}), schema)
    assert sum(v.count for v in report.violations) == count


def test_inf_breaks_a_finite_range_and_is_reported_as_text() -> None:
    schema = Schema(columns=(ColumnSchema("x", "float", min=0.0, max=1.0),))
    v = only(check(pd.DataFrame({"x": [0.5, np.inf, -np.inf]}), schema), "range")
    assert (v.count, v.observed, rows(v)) == (2, ["-inf", "inf"], [1, 2])
    json.dumps(v.examples, allow_nan=False)


def test_categories_report_unseen_values_and_skip_nulls() -> None:
    schema = Schema(columns=(ColumnSchema("c", "string", max_missing=1.0, categories=("a", "ü")),))
    frame = pd.DataFrame({"c": ["a", "b", None, "ü", "b", "z"]})
    v = only(check(frame, schema), "categories")
    assert (v.count, sorted(v.observed), rows(v)) == (3, ["b", "z"], [1, 4, 5])
    cat = frame.astype({"c": "category"})
    assert check(cat, schema).to_dict() == check(frame, schema).to_dict()


def test_dtype_mismatch_counts_values_and_skips_other_checks() -> None:
    schema = Schema(columns=(ColumnSchema("x", "integer", min=0, max=1),))
    v = only(check(pd.DataFrame({"x": ["1", "2", None]}), schema), "dtype")
    assert (v.count, v.expected, rows(v)) == (2, "integer", [0, 1])
    assert v.observed.startswith("string")
    assert len(check(pd.DataFrame({"x": ["1"]}), schema).violations) == 1


def test_floats_pass_as_integers_when_whole() -> None:
    schema = Schema(columns=(ColumnSchema("x", "integer", max_missing=0.5),))
    assert check(pd.DataFrame({"x": [1.0, np.nan, 3.0]}), schema).ok  # pandas int with a gap
    v = only(check(pd.DataFrame({"x": [1.0, 2.5, 3.0, 0.1]}), schema), "dtype")
    assert (v.count, rows(v)) == (2, [1, 3])
    int_for_float = Schema(columns=(ColumnSchema("x", "float"),))
    assert check(pd.DataFrame({"x": [1, 2]}), int_for_float).ok


def test_row_count_range_decides_on_an_empty_table() -> None:
    schema = infer_schema(reference())
    v = only(check(reference().iloc[:0], schema), "rows")
    assert (v.column, v.observed, v.expected, v.count) == (None, 0, {"min": 1}, 0)
    bounded = Schema(table=TableSchema(min_rows=None, max_rows=3))
    assert check(pd.DataFrame(index=range(3)), bounded).ok
    assert only(check(pd.DataFrame(index=range(4)), bounded), "rows").observed == 4


@pytest.mark.parametrize(
    ("policy", "problems"),
    [
        ("exact", [("b", "absent"), ("z", "present")]),
        ("subset", [("z", "present")]),
        ("superset", [("b", "absent")]),
    ],
)
def test_column_set_policies(policy: str, problems: list[tuple[str, str]]) -> None:
    schema = Schema(
        table=TableSchema(columns=policy),
        columns=(ColumnSchema("a", "integer"), ColumnSchema("b", "integer")),
    )
    report = check(pd.DataFrame({"a": [1], "z": [2]}), schema)
    assert [(v.column, v.observed) for v in report.violations] == problems
    assert all(v.expectation == "columns" for v in report.violations)


def test_column_order_policy() -> None:
    columns = (ColumnSchema("a", "integer"), ColumnSchema("b", "integer"))
    swapped = pd.DataFrame({"b": [1], "a": [2]})
    v = only(check(swapped, Schema(columns=columns)), "order")
    assert (v.observed, v.expected) == (["b", "a"], ["a", "b"])
    assert check(swapped, Schema(table=TableSchema(order=False), columns=columns)).ok


def test_key_duplicates_are_counted_with_their_rows() -> None:
    frame = pd.DataFrame({"id": [1, 2, 1, 3, 2, 1, 4], "day": [1, 1, 2, 1, 1, 1, 1]})
    one = infer_schema(frame.drop_duplicates("id"), key="id")
    v = only(check(frame, one), "key")
    assert (v.column, v.count, v.observed, v.expected) == (None, 5, [1, 2], ["id"])
    assert rows(v) == [0, 1, 2, 4, 5]
    two = Schema(
        table=TableSchema(key=("id", "day")),
        columns=(ColumnSchema("id", "integer"), ColumnSchema("day", "integer")),
    )
    v = only(check(frame, two), "key")
    assert (v.count, v.observed, rows(v)) == (
        4,
        [{"id": 1, "day": 1}, {"id": 2, "day": 1}],
        [0, 1, 4, 5],
    )
    assert "row 0: {'id': 1, 'day': 1}" in ValidationReport(7, (v,))._repr_html_().replace(
        "&#x27;", "'"
    )


@pytest.mark.parametrize(
    ("values", "count", "observed", "example_rows"),
    [
        (["b", "a", "b", "c", "a", "b"], 5, ["a", "b"], [0, 1, 2, 4, 5]),  # hashed
        ([3, None, 1, None, 2], 2, [None], [1, 3]),  # nulls are one key value
        ([1, 2, 3, 3], 2, [3], [2, 3]),  # sorted ids, one repeat
        (list(range(10)) * 2, 20, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]),
    ],
)
def test_key_duplicates_for_each_kind_of_column(
    values: list[Any], count: int, observed: list[Any], example_rows: list[int]
) -> None:
    schema = Schema(table=TableSchema(key=("k",), columns="superset"))
    frame = pa.table({"k": values})
    v = only(check(frame, schema), "key")
    assert (v.count, v.observed, rows(v)) == (count, observed, example_rows)
    assert check(pa.table({"k": sorted(set(values), key=str)}), schema).ok


# -- severity, errors and views -------------------------------------------------------------


def test_warnings_are_logged_and_returned_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    schema = Schema(
        columns=(
            ColumnSchema(
                "x", "integer", min=0, max=1, severity={"default": "error", "range": "warn"}
            ),
        )
    )
    with caplog.at_level(logging.WARNING, logger="loopml.data.validate"):
        report = validate(pd.DataFrame({"x": [0, 5]}), schema)
    assert report.ok and report.errors == [] and len(report.warnings) == 1
    assert "column 'x': range: observed [0, 5]" in caplog.text


def test_errors_raise_with_the_report_and_a_listing() -> None:
    schema = infer_schema(reference())
    bad = reference().assign(age=[20, 30, 400, 50, -60])
    with pytest.raises(ValidationError) as caught:
        validate(bad, schema)
    err = caught.value
    assert issubclass(ValidationError, LoopmlError) and issubclass(ValidationError, ValueError)
    assert err.report.errors[0].count == 2
    assert "1 validation error (5 rows checked):" in str(err)
    assert (
        "column 'age': range: observed [-60, 400], expected [16, 64], 2 rows (e.g. rows 2, 4)"
        in str(err)
    )


def test_report_is_json_able_and_round_trips() -> None:
    schema = infer_schema(reference())
    bad = reference().assign(
        score=[np.inf, 1.0, np.nan, np.nan, 2.0],
        when=pd.to_datetime(["2024-01-01"] * 5),
    )
    report = check(bad, Schema(table=TableSchema(columns="superset"), columns=schema.columns))
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert ValidationReport.from_dict(json.loads(text)) == report
    assert report.violations[0].examples[0]["values"]["when"] == "2024-01-01T00:00:00"
    frame = report.frame()
    assert list(frame["expectation"]) == ["missing", "range"]
    assert list(frame["count"]) == [2, 1]


def test_views_escape_hostile_text() -> None:
    from rich.console import Console

    v = Violation("<b>[bold]x</b>", "range", "error", [0, 9], [0, 1], 1, [{"row": 0, "values": {}}])
    report = ValidationReport(rows=1, violations=(v,))
    html = report._repr_html_()
    assert "<b>" not in html and "&lt;b&gt;[bold]x&lt;/b&gt;" in html
    console = Console(record=True, width=200)
    console.print(report)
    assert "<b>[bold]x</b>" in console.export_text()
    assert "Validation found errors: 1 rows, 1 error, 0 warnings" in str(report)


# -- inputs ---------------------------------------------------------------------------------


def batch() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 2, 4, 5, 6],
            "age": [20, 99, 40, 50, 60, 70],
            "score": [0.5, 1.0, None, None, 9.0, 2.0],
            "city": ["Oslo", "Paris", "Oslo", None, "Bergen", "Rome"],
            "ok": [True, False, True, True, False, True],
        }
    )


def test_pandas_polars_pyarrow_csv_and_parquet_give_the_same_report(tmp_path: Path) -> None:
    schema = infer_schema(reference(), key="id")
    frame = batch()
    frame.to_csv(tmp_path / "b.csv", index=False)
    frame.to_parquet(tmp_path / "b.parquet", index=False)
    reports = [
        check(x, schema).to_dict()
        for x in (
            frame,
            pl.from_pandas(frame),
            pa.Table.from_pandas(frame, preserve_index=False),
            tmp_path / "b.csv",
            str(tmp_path / "b.parquet"),
        )
    ]
    assert all(r == reports[0] for r in reports[1:])
    kinds = [(v["column"], v["expectation"], v["count"]) for v in reports[0]["violations"]]
    assert kinds == [
        (None, "key", 2),
        ("age", "range", 2),
        ("score", "missing", 2),
        ("score", "range", 1),
        ("city", "missing", 1),
        ("city", "categories", 2),
    ]


def test_hostile_names_and_categoricals_give_the_same_report_from_every_input(
    tmp_path: Path,
) -> None:
    names = ['a"b', "ünï ✓", "a.b", "a=b", ",comma", "[bold]x"]
    ref = pd.DataFrame({n: [f"{i}-ø", "y", "z"] for i, n in enumerate(names)})
    ref["n"] = [1, 2, 3]
    schema = Schema.from_toml(infer_schema(ref, key="n").to_toml())
    new = ref.copy()
    new.loc[1, names[0]] = "new value"
    new.loc[2, "n"] = 1
    new.to_csv(tmp_path / "hostile.csv", index=False)
    inputs = [
        new,
        new.astype({names[1]: "category"}),
        pl.from_pandas(new).with_columns(pl.col(names[2]).cast(pl.Categorical)),
        tmp_path / "hostile.csv",
    ]
    reports = [check(x, schema).to_dict() for x in inputs]
    assert all(r == reports[0] for r in reports[1:])
    assert [(v["column"], v["expectation"], v["count"]) for v in reports[0]["violations"]] == [
        (None, "key", 2),
        ('a"b', "categories", 1),
    ]


def test_schema_can_be_a_path(tmp_path: Path) -> None:
    path = infer_schema(reference()).save(tmp_path / "s.toml")
    assert validate(reference(), path).ok and validate(reference(), str(path)).ok


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"a,b\n1,2\n3,4,5\n6,7\n", "line 3, column 3: got 3 fields; expected 2"),
        (b"a,b\n1,2\n3\n", "line 3, column 'b': got 1 field; expected 2"),
        (b"a,b\n1,x\n2,caf\xe9\n", "line 3, column 'b': got the byte 0xe9 in 'caf\ufffd'"),
    ],
)
def test_bad_csv_files_name_the_line(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "new_batch.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidParameterError) as caught:
        validate(path, Schema())
    assert words in str(caught.value) and "new_batch.csv" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([1, 2, 3], "got [1, 2, 3] of type builtins.list; expected a pandas or polars DataFrame"),
        (42, "got 42 of type builtins.int"),
        (Path("nowhere.csv"), "nowhere.csv': no such file"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "columns ['a'] appear more than once"),
    ],
)
def test_bad_data_is_refused(data: Any, words: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        validate(data, Schema())
    assert words in str(caught.value)


def test_other_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InvalidParameterError, match=r"'\.json'; expected one of \.csv, \.parquet"):
        validate(tmp_path / "x.json", Schema())
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(InvalidParameterError, match="cannot be read"):
        validate(tmp_path / "x.parquet", Schema())
    pq.write_table(pa.table({"a": [1]}), tmp_path / "ok.parquet")
    assert validate(tmp_path / "ok.parquet", infer_schema(tmp_path / "ok.parquet")).ok


def test_an_all_missing_column_has_no_value_outside_the_categories() -> None:
    schema = infer_schema(pa.table({"city": ["Lyon", "Oslo"]}))
    empty = pa.table({"city": pa.nulls(2)})  # what pyarrow reads from an empty CSV column
    report = validate(empty, schema, raise_on_error=False)
    assert [(v.column, v.expectation) for v in report.violations] == [("city", "missing")]
