"""Turning what ``profile()`` is given into named column loaders, with clear errors.

A Parquet file is read one column at a time inside the profiling task, so memory holds
about one column per worker, not the table. Everything else (DataFrames, Arrow tables,
CSV and JSON Lines files, which have no column access) goes through ``tables.as_arrow``,
which names the input and the fix for every failure we know of.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# (name, load the column, whether a plain string column is loaded dictionary-encoded)
Loader = tuple[str, Callable[[], "pa.ChunkedArray"], bool]


def column_loaders(data: object) -> tuple[int, list[Loader]]:
    """The row count and one ``(name, load, as_dictionary)`` triple per column of ``data``."""
    from loopml.data.tables import as_arrow, file_format

    if isinstance(data, (str, os.PathLike)) and file_format(Path(data)) == "parquet":
        return _parquet(Path(data))
    return _from_table(as_arrow(data, what="profile"))


def _from_table(table: pa.Table) -> tuple[int, list[Loader]]:
    def loader(i: int) -> Callable[[], pa.ChunkedArray]:
        return lambda: table.column(i)

    names = table.column_names
    return table.num_rows, [(name, loader(i), False) for i, name in enumerate(names)]


def _parquet(path: Path) -> tuple[int, list[Loader]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopml.data.tables import check_file, unreadable_parquet

    check_file(path)
    try:
        with pq.ParquetFile(path) as meta:
            schema = meta.schema_arrow
            names = schema.names
            rows = meta.metadata.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise unreadable_parquet(path, exc) from exc

    def loader(name: str, as_dictionary: bool) -> Callable[[], pa.ChunkedArray]:
        # Parquet stores repeated strings as a dictionary; reading them that way skips
        # building a million strings (9 ms instead of 66 ms for a 1M-row category column),
        # and counting values then counts dictionary indices.
        wanted = [name] if as_dictionary else None

        def load() -> pa.ChunkedArray:
            try:
                return pq.read_table(path, columns=[name], read_dictionary=wanted).column(0)
            except (pa.ArrowInvalid, OSError) as exc:  # a damaged page in this column
                raise unreadable_parquet(path, exc, column=name) from exc

        return load

    if len(set(names)) != len(names):  # a name cannot pick one of two same-named columns
        return _from_table(pq.read_table(path))
    loaders: list[Loader] = []
    for field in schema:
        text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        loaders.append((field.name, loader(field.name, text), text))
    return rows, loaders
