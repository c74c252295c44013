"""polars DataFrame (and Series) → Parquet, written by polars itself.

polars is imported only inside the methods. A Series is stored as a one-column frame
and comes back as a Series when the metadata says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopml.artifacts.materializers import require


class PolarsParquetMaterializer:
    """``polars.DataFrame`` / ``polars.Series`` ↔ a Parquet file."""

    name = "polars.parquet"
    extension = ".parquet"

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        pl = require("polars", "Storing polars values", "polars")
        kind = "series" if isinstance(value, pl.Series) else "dataframe"
        frame = value.to_frame() if kind == "series" else value
        frame.write_parquet(path)
        schema = {name: str(dtype) for name, dtype in frame.schema.items()}
        return {"kind": kind, "rows": frame.height, "columns": frame.width, "schema": schema}

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        pl = require("polars", "Loading polars values", "polars")
        frame = pl.read_parquet(path)
        return frame.to_series() if metadata.get("kind") == "series" else frame
