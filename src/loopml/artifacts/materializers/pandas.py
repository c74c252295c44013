"""pandas DataFrame and Series → Parquet, through pyarrow.

The index, dtypes (categorical, tz-aware datetimes, nullable and string dtypes) and
``attrs`` round-trip through pyarrow's pandas metadata. What the file holds (a frame or
a series, and the series' name) is also written into the Parquet schema metadata, so a
blob loads correctly even without the metadata row. Bytes are deterministic for an
equal frame under the same library versions, so re-running a step gives the same digest.
pandas and pyarrow are imported inside the methods only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loopml.artifacts.materializers import require
from loopml.errors import MaterializerError

_SERIES_COLUMN = "__loopml_series__"
_META_KEY = b"loopml"


def _check_columns(frame: Any) -> None:
    import pandas as pd

    columns = frame.columns
    if columns.has_duplicates:
        dupes = sorted({str(c) for c in columns[columns.duplicated()]})
        raise MaterializerError(
            f"Cannot store a DataFrame with duplicate column names {dupes} as Parquet. "
            "Rename them first, e.g. df.columns = [f'{c}_{i}' for i, c in enumerate(df.columns)]."
        )
    if not isinstance(columns, pd.MultiIndex):
        kinds = sorted({type(c).__name__ for c in columns})
        if len(kinds) > 1:
            raise MaterializerError(
                f"Cannot store a DataFrame whose column names mix types {kinds}: Parquet "
                "would turn them all into str. Rename them, e.g. df.columns = df.columns.astype(str)."
            )


class PandasParquetMaterializer:
    """``pandas.DataFrame`` / ``pandas.Series`` ↔ a Parquet file."""

    name = "pandas.parquet"
    extension = ".parquet"

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        pd = require("pandas", "Storing pandas values", "data")
        pa = require("pyarrow", "Storing pandas values as Parquet", "data")
        pq = require("pyarrow.parquet", "Storing pandas values as Parquet", "data")
        if isinstance(value, pd.Series):
            if not isinstance(value.name, str | int | float | bool | type(None)):
                raise MaterializerError(
                    f"Cannot store a pandas Series named {value.name!r}: the name must be a "
                    "str, int, float, bool or None. Rename it with series.rename('name')."
                )
            info: dict[str, Any] = {"kind": "series", "name": value.name}
            frame = value.to_frame(name=_SERIES_COLUMN)
        else:
            info = {"kind": "dataframe"}
            frame = value
        _check_columns(frame)
        try:
            table = pa.Table.from_pandas(frame, preserve_index=None)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise MaterializerError(
                f"Cannot convert this {info['kind']} to Arrow for Parquet: {exc}. Columns of "
                "dtype object must hold one type each; convert them with .astype(str) or a "
                "concrete dtype."
            ) from exc
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[_META_KEY] = json.dumps(info, sort_keys=True).encode()
        # Dictionary-encoding high-cardinality floats is wasted work (pyarrow tries, then
        # falls back): encode only the other columns, where repeats are likely.
        dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
        pq.write_table(table.replace_schema_metadata(schema_meta), path, use_dictionary=dictionary)
        schema = {str(c): str(t) for c, t in frame.dtypes.items()}
        if info["kind"] == "series":
            schema = {str(value.name): str(value.dtype)}
        return {**info, "rows": len(frame), "columns": frame.shape[1], "schema": schema}

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        pq = require("pyarrow.parquet", "Loading pandas values from Parquet", "data")
        table = pq.read_table(path)
        info = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
        frame = table.to_pandas()
        if info.get("kind") == "series":
            series = frame[_SERIES_COLUMN]
            series.name = info.get("name")
            return series
        return frame
