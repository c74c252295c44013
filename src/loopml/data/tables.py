"""Turn what users hand to the data functions into one pyarrow Table, with clear errors.

``profile``, ``validate``, ``drift`` and datasets accept the same things: a pandas or
polars DataFrame, a pyarrow Table, or a path to a ``.csv``, ``.parquet``/``.pq`` or
``.jsonl``/``.ndjson`` file. Objects are recognised by the module of their type, so this
file never imports a library the caller has not already imported. Files are read with
pyarrow's readers. When pyarrow fails on a CSV file, or cheap checks of what it read look
wrong (a NUL byte, an odd number of quotes, a header that is no header), the file is
scanned again in Python (``csv_lines.py``) to name the line, the column and the fix,
because pyarrow's threaded reader does not.
An empty CSV field is a missing value, as pandas and polars read it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import pyarrow as pa

SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
ACCEPTED = (
    "a pandas or polars DataFrame, a pyarrow Table, or a path to a .csv, .parquet or .jsonl file"
)


def file_format(path: Path) -> str | None:
    """``csv``, ``parquet`` or ``jsonl`` from a file name; None for anything else."""
    return SUFFIXES.get(path.suffix.lower())


def as_arrow(data: Any, *, what: str = "data", mixed_as_text: bool = False) -> pa.Table:
    """``data`` as a pyarrow Table with unique string column names.

    ``mixed_as_text``: a pandas column of mixed Python objects becomes text instead of an
    error (drift compares such columns by their text).

    Raises:
        InvalidParameterError: an unsupported object, a missing or unreadable file,
            duplicate column names.
    """
    if isinstance(data, str | os.PathLike):
        return read_file(Path(data))
    package = type(data).__module__.split(".")[0]
    name = type(data).__name__
    table: pa.Table | None = None
    if package == "pyarrow" and name == "Table":
        table = data
    elif package == "pyarrow" and name == "RecordBatch":
        import pyarrow as pa

        table = pa.Table.from_batches([data])
    elif package == "pandas" and name == "DataFrame":
        table = _from_pandas(data, what, mixed_as_text)
    elif package == "polars" and name in ("DataFrame", "LazyFrame"):
        frame = data.collect() if name == "LazyFrame" else data
        table = frame.to_arrow()
    if table is None:
        shown = repr(data)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise InvalidParameterError(
            f"{what}: got {shown} of type {type(data).__module__}.{type(data).__qualname__}; "
            f"expected {ACCEPTED}. Wrap records first, e.g. pandas.DataFrame(records)."
        )
    _unique_names(table.column_names, what)
    return table


def _from_pandas(frame: Any, what: str, mixed_as_text: bool) -> pa.Table:
    import pyarrow as pa

    names = [str(c) for c in frame.columns]
    _unique_names(names, what)
    if not names:  # Arrow keeps a table's row count only through a column
        table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=True)
        return table.drop_columns(table.column_names)
    arrays = []
    for i, label in enumerate(names):
        series = frame.iloc[:, i]
        try:
            arrays.append(pa.Array.from_pandas(series))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            if not mixed_as_text:
                raise InvalidParameterError(
                    f"{what}: pandas column {label!r} cannot be read as one type ({exc}); "
                    f"expected one type per column. Convert it, e.g. "
                    f"df[{label!r}] = df[{label!r}].astype(str)."
                ) from exc
            arrays.append(pa.Array.from_pandas(series.astype("string")))
    return pa.table(arrays, names=names)


def _unique_names(names: list[str], what: str) -> None:
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if dupes:
        raise InvalidParameterError(
            f"{what}: columns {dupes} appear more than once; expected unique column names. "
            "Rename or drop the duplicates."
        )


def check_file(path: Path) -> str:
    """The file's format; raises a clear error for a missing file or an unknown suffix."""
    fmt = file_format(path)
    if fmt is None:
        raise InvalidParameterError(
            f"Data file {str(path)!r}: got the suffix {path.suffix or '(none)'!r}; expected one "
            f"of {', '.join(SUFFIXES)}. Load other formats with pandas or polars and pass the "
            "DataFrame."
        )
    if not path.is_file():
        hint = "it is a folder" if path.is_dir() else "no such file"
        raise InvalidParameterError(
            f"Data file {str(path)!r}: {hint} (working directory {os.getcwd()!r}). Check the path."
        )
    return fmt


def read_file(path: Path, *, fmt: str | None = None, label: str | None = None) -> pa.Table:
    """Read a .csv, .parquet or .jsonl file with pyarrow; errors name the file (and the line).

    ``fmt`` overrides the format the suffix gives; ``label`` is how errors name a CSV file
    whose path means nothing to the user (``"the request body"`` for a spooled upload).
    """
    import pyarrow as pa

    fmt = fmt or check_file(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise unreadable_parquet(path, exc) from exc
    elif fmt == "csv":
        table = _read_csv(path, label or f"CSV file {str(path)!r}")
    else:
        import pyarrow.json as pj

        try:
            table = pj.read_json(path)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidParameterError(
                f"JSON lines file {str(path)!r}: cannot be read ({exc}); expected one JSON "
                "object per line. Fix that line, or load the file yourself and pass the DataFrame."
            ) from exc
    _unique_names(table.column_names, repr(str(path)))
    return table


def unreadable_parquet(
    path: Path, exc: BaseException, *, column: str | None = None
) -> InvalidParameterError:
    where = f", column {column!r}" if column is not None else ""
    return InvalidParameterError(
        f"Parquet file {str(path)!r}{where}: cannot be read ({exc}); expected a complete "
        "Parquet file. Check that it was written completely (e.g. export it again)."
    )


def _read_csv(path: Path, where: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from loopml.data.csv_lines import scan

    # A quoted value may span lines; without newlines_in_values pyarrow splits big files
    # into blocks at any newline and then fails on a valid file ("out of sync").
    parse = pcsv.ParseOptions(newlines_in_values=True)
    convert = pcsv.ConvertOptions(strings_can_be_null=True)
    try:
        try:
            table = pcsv.read_csv(path, parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
            # A row longer than pyarrow's 1 MB block: read again in one block as big as the file.
            size = min(max(path.stat().st_size + 1, 1 << 20), (1 << 31) - 1)
            table = pcsv.read_csv(
                path,
                read_options=pcsv.ReadOptions(block_size=size),
                parse_options=parse,
                convert_options=convert,
            )
        names = table.column_names  # a header that is not UTF-8 fails here
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        header = csv_failure(path, where, exc)
        return pa.table({name: pa.nulls(0) for name in header})
    if _suspicious(path, table, names):
        found = scan(path, where)
        if found.problem is not None:
            raise found.problem
    if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in table.schema):
        raise _unreadable_csv(where, "a column is not valid UTF-8 text")
    return table


def csv_failure(path: Path, where: str, exc: BaseException) -> list[str]:
    """After pyarrow failed on a CSV file: raise the error naming its line and column (found by
    ``csv_lines.scan``), or return the header of a file that is only a header line with no
    newline after it (pyarrow fails on that; it is an empty table).

    Raises:
        InvalidParameterError: the located problem, or pyarrow's own words when the scan
            finds nothing wrong.
    """
    from loopml.data.csv_lines import scan

    found = scan(path, where)
    if found.problem is not None:
        raise found.problem from exc
    if found.header and not found.rows:
        return found.header
    raise _unreadable_csv(where, str(exc)) from exc


def _unreadable_csv(where: str, detail: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"{where}: cannot be read ({detail}); expected comma-separated UTF-8 "
        "text with a header line. Read it with pandas.read_csv and pass the DataFrame."
    )


def _suspicious(path: Path, table: pa.Table, names: list[str]) -> bool:
    """Cheap signs that pyarrow read a malformed file without failing: then ``scan`` it.

    pyarrow reads bytes that are not UTF-8 as a binary column, a NUL byte as text, a
    never-closed quote as a value running to the end of the file (an odd number of quote
    characters), a ``;``-separated file as one column, and a repeated header line as a
    row of text.
    """
    import pyarrow as pa

    from loopml.data.csv_lines import header_suspicious

    if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in table.schema):
        return True
    if header_suspicious(names) or suspicious_bytes(path):
        return True
    text = all(pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in table.schema)
    return text and repeats_header(table, names)


def suspicious_bytes(path: Path) -> bool:
    """A NUL byte, or an odd number of quote characters (a quote never closed), in the file."""
    quotes, nul = 0, False
    with path.open("rb") as raw:
        while chunk := raw.read(1 << 20):
            quotes += chunk.count(b'"')
            nul = nul or b"\x00" in chunk
    return nul or bool(quotes % 2)


def repeats_header(table: pa.Table | pa.RecordBatch, names: list[str]) -> bool:
    """Whether a row of text columns equals the header line (two files joined)."""
    import pyarrow.compute as pc

    if not table.num_rows or not names:
        return False
    same = [pc.equal(table.column(i), name) for i, name in enumerate(names)]
    rows = same[0]
    for other in same[1:]:
        rows = pc.and_(rows, other)
    return bool(pc.any(rows).as_py())
