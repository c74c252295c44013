"""Turn what users hand to ``validate`` into one pyarrow Table, with clear errors for bad input.

pandas, polars and pyarrow objects are recognised by the module of their type, so this
file never imports a library the caller has not already imported. Files are read with
pyarrow's readers; when a CSV is ragged or not UTF-8, the file is scanned again in Python
(only on that error path) to name the line, because pyarrow's message does not.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import pyarrow as pa

ACCEPTED = "a pandas or polars DataFrame, a pyarrow Table, or a path to a .csv or .parquet file"


def to_arrow(data: Any, *, what: str = "data") -> pa.Table:
    """``data`` as a pyarrow Table with string column names.

    Raises:
        InvalidParameterError: an unsupported object, a missing or unreadable file.
    """
    if isinstance(data, str | os.PathLike):
        return read_file(Path(data))
    package = type(data).__module__.split(".")[0]
    if package == "pyarrow":
        import pyarrow as pa

        if isinstance(data, pa.Table):
            return _checked(data, what)
        if isinstance(data, pa.RecordBatch):
            return _checked(pa.Table.from_batches([data]), what)
    elif package == "pandas" and type(data).__name__ == "DataFrame":
        return _from_pandas(data)
    elif package == "polars":
        if type(data).__name__ == "DataFrame":
            return _checked(data.to_arrow(), what)
        if type(data).__name__ == "LazyFrame":
            raise InvalidParameterError(
                f"{what}: got a polars LazyFrame; expected {ACCEPTED}. Pass `frame.collect()`."
            )
    raise InvalidParameterError(
        f"{what}: got {type(data).__module__}.{type(data).__qualname__}; expected {ACCEPTED}."
    )


def _from_pandas(frame: Any) -> pa.Table:
    import pyarrow as pa

    frame = (
        frame.rename(columns=str) if not all(isinstance(c, str) for c in frame.columns) else frame
    )
    _unique_names([str(c) for c in frame.columns], "pandas DataFrame")
    try:
        if not len(frame.columns):  # Arrow keeps the row count of a table only through a column
            table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=True)
            return table.drop_columns(table.column_names)
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise InvalidParameterError(
            f"pandas DataFrame: cannot be read as a table ({exc}); expected one type per "
            "column. Convert mixed object columns with `.astype(str)`."
        ) from exc


def _checked(table: pa.Table, what: str) -> pa.Table:
    _unique_names(table.column_names, what)
    return table


def _unique_names(names: list[str], what: str) -> None:
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if dupes:
        raise InvalidParameterError(
            f"{what}: columns {dupes} appear more than once; expected unique column names. "
            "Rename or drop the duplicates."
        )


def read_file(path: Path) -> pa.Table:
    """Read a .csv or .parquet file with pyarrow; errors name the file (and the line)."""
    import pyarrow as pa

    if not path.is_file():
        raise InvalidParameterError(
            f"Data file {str(path)!r}: does not exist; expected {ACCEPTED}. Check the path."
        )
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return _checked(pq.read_table(path), repr(str(path)))
        except (pa.ArrowException, OSError) as exc:
            raise InvalidParameterError(
                f"Parquet file {str(path)!r}: cannot be read ({exc}); expected a Parquet file."
            ) from exc
    if suffix == ".csv":
        return _read_csv(path)
    raise InvalidParameterError(
        f"Data file {str(path)!r}: got the suffix {suffix!r}; expected .csv or .parquet. "
        "Load other formats with pandas or polars and pass the DataFrame."
    )


def _read_csv(path: Path) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        # empty fields are missing values, as pandas and polars read them
        table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    except (pa.ArrowException, OSError) as exc:
        raise _csv_problem(path, str(exc)) from exc
    if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in table.schema):
        # pyarrow reads bytes that are not UTF-8 as a binary column instead of failing
        raise _csv_problem(path, "a column is not valid UTF-8 text")
    return _checked(table, f"CSV file {str(path)!r}")


def _csv_problem(path: Path, detail: str) -> InvalidParameterError:
    """Find the first line that is not UTF-8, or has the wrong number of fields, and name it."""
    with path.open("rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return InvalidParameterError(
                    f"CSV file {str(path)!r}, line {number}: byte {line[exc.start]:#04x} at "
                    f"position {exc.start + 1} is not UTF-8; expected UTF-8 text. Re-save the "
                    "file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
                )
    with path.open(encoding="utf-8", newline="") as text:
        reader = csv.reader(text)
        header = next(reader, [])
        for fields in reader:
            if fields and len(fields) != len(header):
                return InvalidParameterError(
                    f"CSV file {str(path)!r}, line {reader.line_num}: got {len(fields)} fields; "
                    f"expected {len(header)} as in the header. Fix the line, or quote a field "
                    "that contains a comma."
                )
    return InvalidParameterError(f"CSV file {str(path)!r}: cannot be read ({detail}).")
