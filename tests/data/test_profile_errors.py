"""Bad inputs to ``profile()`` give an InvalidParameterError naming the input and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.data.profile import Profile, profile
from loopml.errors import InvalidParameterError


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    for name in ("gone.csv", "gone.parquet"):
        with pytest.raises(
            InvalidParameterError, match=r"gone\.\w+'.*no such file.*Check the path"
        ):
            profile(tmp_path / name)
    with pytest.raises(InvalidParameterError, match="it is a folder"):
        (tmp_path / "dir.csv").mkdir()
        profile(tmp_path / "dir.csv")


def test_a_ragged_csv_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4\n5,6,7\n" + "8,9\n" * 1000, encoding="utf-8")
    with pytest.raises(InvalidParameterError) as caught:
        profile(path)
    message = str(caught.value)
    assert "ragged.csv', line 4, column 3: got 3 fields; expected 2 as in the header" in message


def test_a_csv_in_another_encoding_says_how_to_convert(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("city,n\nMünchen,1\nZürich,2\n".encode("latin-1"))
    with pytest.raises(InvalidParameterError) as caught:
        profile(path)
    message = str(caught.value)
    assert "latin.csv', line 2, column 'city': got the byte 0xfc" in message
    assert "'M\ufffdnchen', which is not UTF-8" in message
    assert "iconv -f latin1 -t utf-8" in message and "encoding='latin-1'" in message


def test_an_unsupported_extension_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(
        InvalidParameterError, match=r"'\.xlsx'; expected one of \.csv, \.parquet, \.pq, \.jsonl"
    ):
        profile(path)


def test_a_damaged_parquet_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(
        InvalidParameterError,
        match="broken.parquet': cannot be read .*expected a complete Parquet file",
    ):
        profile(path)


def test_a_malformed_jsonl_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(
        InvalidParameterError, match="rows.jsonl': cannot be read .*one JSON object per line"
    ):
        profile(path)


@pytest.mark.parametrize("data", [[{"a": 1}], {"a": [1, 2]}, 42, None, pa.array([1, 2])])
def test_an_object_that_is_not_a_table_is_refused_with_the_fix(data: object) -> None:
    with pytest.raises(
        InvalidParameterError, match="of type .*; expected a pandas or polars DataFrame"
    ):
        profile(data)


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"bins": 0}, "bins"), ({"top": -1}, "top"), ({"bins": 2.5}, "bins")]
)
def test_bad_parameters_are_named(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"parameter '{name}'"):
        profile(pa.table({"x": [1]}), **kwargs)  # type: ignore[arg-type]


def test_a_stored_profile_of_an_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="format 99; expected 1"):
        Profile.from_dict({"format": 99, "rows": 0, "columns": []})


def test_an_empty_csv_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InvalidParameterError, match="empty.csv': is empty; expected a header line"):
        profile(path)


@pytest.mark.parametrize(
    ("frame", "fix"),
    [
        (pd.DataFrame({"m": [1, "x"]}), "cannot be read as one type .*astype\\(str\\)"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "columns \\['a'\\] appear more than once"),
    ],
)
def test_a_pandas_frame_arrow_cannot_hold_says_why(frame: pd.DataFrame, fix: str) -> None:
    with pytest.raises(InvalidParameterError, match=fix):
        profile(frame)


def test_a_parquet_file_damaged_inside_a_column_names_the_column(tmp_path: Path) -> None:
    path = tmp_path / "cut.parquet"
    pq.write_table(pa.table({"x": np.arange(50_000, dtype="float64")}), path, compression="zstd")
    data = bytearray(path.read_bytes())
    data[100:40_000] = b"\xff" * 39_900  # clobber the data pages, keep the footer
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidParameterError, match="cut.parquet', column 'x': cannot be read"):
        profile(path)
