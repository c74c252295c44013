"""Profiles of tabular data: ``profile(data)`` and the ``Profile`` it returns.

A profile is the per-column summary of a table (types, missing values, distinct counts,
numeric statistics with a histogram, top categories) that is stored as JSON with each
dataset version, printed by ``loopml data show`` and drawn as a self-contained HTML page.

This module holds the public surface only; the statistics are in ``profile_stats.py``,
reading inputs in ``profile_read.py``, the terminal and HTML views in ``profile_view.py``
and one column's fields in ``profile_column.py``. None of them imports numpy, pandas,
pyarrow or rich at import time.

Example:
    >>> import pyarrow as pa
    >>> p = profile(pa.table({"x": [1.0, 2.0, None], "c": ["a", "b", "a"]}))
    >>> p.rows, p["x"].missing, p["x"].mean, p["c"].top
    (3, 1, 1.5, (('a', 2), ('b', 1)))
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.data.profile_column import ColumnProfile, Histogram
from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

__all__ = ["ColumnProfile", "Histogram", "Profile", "profile"]

FORMAT = 1


def profile(data: object, *, bins: int = 20, top: int = 10) -> Profile:
    """Profile a table: one ``ColumnProfile`` per column.

    Args:
        data: a pandas or polars DataFrame, a pyarrow Table, or a path to a ``.csv``,
            ``.parquet`` or ``.jsonl`` file.
        bins: number of equal-width histogram bins for numeric columns.
        top: number of most frequent values kept for string and boolean columns.

    Returns:
        The ``Profile``; ``.frame()`` gives a pandas view, and it displays itself in a
        notebook and in a Rich console.

    Raises:
        InvalidParameterError: ``data`` is not a table, the file is missing, has an
            unsupported extension, a malformed row or a non-UTF-8 encoding, or ``bins``
            or ``top`` is out of range.
    """
    from loopml.data.profile_read import column_loaders
    from loopml.data.profile_stats import profile_columns

    for label, value, low in (("bins", bins, 1), ("top", top, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidParameterError(
                f"profile: parameter {label!r}: got {value!r}; expected an int >= {low}. "
                f"Pass e.g. {label}={20 if label == 'bins' else 10}."
            )
    rows, loaders = column_loaders(data)
    columns = profile_columns(loaders, bins=bins, top=top)
    return Profile(rows=rows, columns=tuple(columns))


@dataclass(frozen=True, slots=True)
class Profile:
    """The profile of a table: its row count and one ``ColumnProfile`` per column."""

    rows: int
    columns: tuple[ColumnProfile, ...]

    def __getitem__(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"no column {name!r}; columns: {[c.name for c in self.columns]}")

    def __iter__(self) -> Iterator[ColumnProfile]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __repr__(self) -> str:
        return f"<Profile {self.rows:,} rows × {len(self.columns)} columns>"

    def frame(self) -> pd.DataFrame:
        """A pandas DataFrame with one row per column and one column per figure."""
        import pandas as pd

        records = []
        for c in self.columns:
            record: dict[str, Any] = {
                "column": c.name,
                "dtype": c.dtype,
                "kind": c.kind,
                "count": c.count,
                "missing": c.missing,
                "missing_share": c.missing_share,
                "distinct": c.distinct,
                "min": c.min,
                "max": c.max,
                "mean": c.mean,
                "std": c.std,
            }
            for q in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99):
                record[f"p{round(q * 100):02d}"] = c.quantiles.get(q)
            record.update(
                infinite=c.infinite,
                zeros=c.zeros,
                negatives=c.negatives,
                top=c.top[0][0] if c.top else None,
                top_count=c.top[0][1] if c.top else None,
                min_length=c.min_length,
                max_length=c.max_length,
            )
            records.append(record)
        frame = pd.DataFrame.from_records(records, columns=_FRAME_COLUMNS)
        for name in _COUNT_COLUMNS:  # counts stay integers where some columns have none
            frame[name] = frame[name].astype("Int64")
        return frame

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-able dict (no NaN or infinity: they are encoded as markers)."""
        return {
            "format": FORMAT,
            "rows": self.rows,
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """The inverse of ``to_dict``; refuses a format it does not know."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise InvalidParameterError(
                f"Profile.from_dict: format {found!r}; expected {FORMAT}. "
                "Pass the dict made by Profile.to_dict() (upgrade loopml for newer ones)."
            )
        return cls(
            rows=data["rows"],
            columns=tuple(ColumnProfile.from_dict(c) for c in data["columns"]),
        )

    def to_json(self) -> str:
        """``to_dict`` as strict JSON text (``allow_nan=False``)."""
        return json.dumps(
            self.to_dict(), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )

    def to_html(self, path: str | Path | None = None, *, title: str = "Data profile") -> str:
        """A self-contained HTML page (inline CSS and SVG, no script, no CDN).

        Writes it to ``path`` when given; returns the page text either way.
        """
        from loopml.data.profile_view import html_page

        page = html_page(self, title=title)
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page

    def _repr_html_(self) -> str:
        from loopml.data.profile_view import html_table

        return html_table(self)

    def __rich__(self) -> Table:
        from loopml.data.profile_view import rich_table

        return rich_table(self)


_COUNT_COLUMNS = [
    "count", "missing", "distinct", "infinite", "zeros", "negatives", "top_count",
    "min_length", "max_length",
]  # fmt: skip
_FRAME_COLUMNS = [
    "column", "dtype", "kind", "count", "missing", "missing_share", "distinct", "min", "max",
    "mean", "std", "p01", "p05", "p25", "p50", "p75", "p95", "p99", "infinite", "zeros",
    "negatives", "top", "top_count", "min_length", "max_length",
]  # fmt: skip
