"""pandas DataFrame and Series → Parquet, through pyarrow.

The index, dtypes (categorical, tz-aware datetimes, nullable and string dtypes) and
``attrs`` round-trip through pyarrow's pandas metadata. What the file holds (a frame or
a series, and the series' name) is also written into the Parquet schema metadata, so a
blob loads correctly even without the metadata row.

A frame also comes back in the memory layout it was saved in, because numerical code
depends on it: ``to_numpy()`` of a frame whose columns share one row-major 2-D block (as
``pd.DataFrame(array, copy=False)`` and ``load_diabetes(as_frame=True)`` make) is
row-major, while pyarrow's ``to_pandas`` gives each dtype one column-major block, and a
Ridge fitted on the two differs in the last bits of its coefficients. A step handed its
input from the store (a process or Ray executor) must compute what it computes on the
in-memory frame (the local executor), so when the layout is not the one pyarrow makes
anyway (one block per dtype, columns in order, each column contiguous) the blocks (their
columns and whether rows or columns are contiguous) are written into the schema metadata
and ``load`` rebuilds them: one copy of those blocks, nothing for the common layout.

Bytes are deterministic for an equal frame with the same layout under the same library
versions, so re-running a step gives the same digest. pandas and pyarrow are imported
inside the methods only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loopml.artifacts.materializers import require
from loopml.errors import MaterializerError

_SERIES_COLUMN = "__loopml_series__"
_META_KEY = b"loopml"
# One entry per block: [order, runs]. order: "C" (each column contiguous) or "F" (each row
# contiguous), then "c" and/or "r" when the block is a reversed view along its columns or its
# rows (``df[df.columns[::-1]]``, ``df.iloc[::-1]``), or "" for a one-column extension array
# (e.g. categorical); runs: the block's columns in block order, as [first position, count].
Layout = list[list[Any]]


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
        layout = None if info["kind"] == "series" else _layout_to_keep(frame)
        stored_info = info if layout is None else {**info, "layout": layout}
        try:
            table = pa.Table.from_pandas(frame, preserve_index=None)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise MaterializerError(
                f"Cannot convert this {info['kind']} to Arrow for Parquet: {exc}. Columns of "
                "dtype object must hold one type each; convert them with .astype(str) or a "
                "concrete dtype."
            ) from exc
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[_META_KEY] = json.dumps(stored_info, sort_keys=True).encode()
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
        layout = info.get("layout")
        if layout and _as_set(block_layout(frame) or []) != _as_set(layout):
            frame = _relayout(frame, layout)
        return frame


def block_layout(frame: Any) -> Layout | None:
    """How ``frame``'s columns sit in memory: its blocks, in order (see ``Layout``); None
    when this pandas keeps no blocks."""
    return _blocks(frame)[0]


def _layout_to_keep(frame: Any) -> Layout | None:
    """``frame``'s layout when ``to_pandas`` would not make it anyway, else None."""
    layout, usual = _blocks(frame)
    return None if usual else layout


def _blocks(frame: Any) -> tuple[Layout | None, bool]:
    """(layout, whether it is pyarrow's: one column-contiguous block per NumPy dtype with
    its columns in order, and one-column blocks for the other dtypes)."""
    import numpy as np

    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)
    if blocks is None:
        return None, True
    layout: Layout = []
    seen: set[Any] = set()
    usual = True
    for block in blocks:
        positions = block.mgr_locs.as_array
        raw = _raw(block.values)
        if raw is None:
            layout.append(["", _runs(positions)])
            continue
        order = _order(raw)
        plain = isinstance(block.values, np.ndarray) or len(positions) == 1
        ascending = bool(np.all(np.diff(positions) > 0))
        usual = usual and plain and order == "C" and ascending and block.dtype not in seen
        seen.add(block.dtype)
        layout.append([order, _runs(positions)])
    return layout, usual


def _raw(values: Any) -> Any:
    """The 2-D NumPy array behind a block (datetimes keep theirs in ``_ndarray``), or None
    for a 1-D extension array."""
    import numpy as np

    raw = getattr(values, "_ndarray", values)
    return raw if isinstance(raw, np.ndarray) and raw.ndim == 2 else None


def _order(raw: Any) -> str:
    """A block's (columns × rows) order: "F" when each row is contiguous, else "C"; then
    "c" / "r" for a view reversed along its columns / rows."""
    columns, rows = raw.shape
    across, down = raw.strides
    order = "F" if columns > 1 and rows > 1 and abs(across) < abs(down) else "C"
    return (
        order + ("c" if columns > 1 and across < 0 else "") + ("r" if rows > 1 and down < 0 else "")
    )


def _runs(positions: Any) -> list[list[int]]:
    runs: list[list[int]] = []
    for position in positions.tolist():
        if runs and runs[-1][0] + runs[-1][1] == position:
            runs[-1][1] += 1
        else:
            runs.append([position, 1])
    return runs


def _positions(runs: list[list[int]]) -> list[int]:
    return [start + i for start, count in runs for i in range(count)]


def _as_set(layout: Layout) -> set[tuple[str, tuple[int, ...]]]:
    """A layout without its block order, which no computation sees."""
    return {(order, tuple(_positions(runs))) for order, runs in layout}


def _relayout(frame: Any, layout: Layout) -> Any:
    """``frame`` with its blocks rebuilt as ``layout`` says (one copy of each 2-D block)."""
    import numpy as np

    mgr = frame._mgr
    blknos, blklocs, sources = mgr.blknos, mgr.blklocs, mgr.blocks
    blocks = []
    for order, runs in layout:
        positions = np.asarray(_positions(runs), dtype=np.intp)
        first = sources[blknos[positions[0]]].values
        if not order:  # a one-column extension array: already a block of its own
            blocks.append((first, positions))
            continue
        out = np.empty((len(positions), len(frame)), dtype=_raw(first).dtype, order=order[0])
        out = out[::-1] if "c" in order else out
        out = out[:, ::-1] if "r" in order else out
        start = 0
        while start < len(positions):  # copy at once the rows that sit together in a source
            block, row = blknos[positions[start]], blklocs[positions[start]]
            end = start + 1
            while (
                end < len(positions)
                and blknos[positions[end]] == block
                and blklocs[positions[end]] == row + end - start
            ):
                end += 1
            out[start:end] = _raw(sources[block].values)[row : row + end - start]
            start = end
        wrap = getattr(first, "_from_backing_data", None)  # datetimes keep their dtype
        blocks.append((out if wrap is None else wrap(out), positions))
    rebuilt = _frame_from_blocks(blocks, frame.index, frame.columns)
    rebuilt.attrs = frame.attrs
    return rebuilt


def _frame_from_blocks(blocks: list[tuple[Any, Any]], index: Any, columns: Any) -> Any:
    """A DataFrame made of exactly these (values, positions) blocks, as pyarrow makes one."""
    try:
        from pandas.api.internals import create_dataframe_from_blocks
    except ImportError:  # pandas < 3: the internals pyarrow itself uses there
        import warnings

        import pandas as pd
        from pandas.core.internals import BlockManager
        from pandas.core.internals.api import make_block

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            made = [make_block(values, placement=positions) for values, positions in blocks]
            mgr = BlockManager(made, [columns, index])
            return pd.DataFrame._from_mgr(mgr, mgr.axes)
    return create_dataframe_from_blocks(blocks, index=index, columns=columns)
