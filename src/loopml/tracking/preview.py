"""A glance at an artifact without loading it: the head of a table, the start of a text.

What the web UI's run page shows under each artifact. Reading is bounded whatever the
artifact's size: a Parquet table is read one batch of ``rows`` rows (not the whole file),
and a text or JSON blob its first ``limit`` bytes. Artifacts no preview fits (models,
arrays, folders, bytes) have none; neither have blobs that are missing or damaged (the
download says why).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import LoopmlError

if TYPE_CHECKING:
    from loopml.store.records import ArtifactRecord
    from loopml.tracking.client import Client

ROWS = 20
LIMIT = 4096
_TABLES = ("pandas.parquet", "polars.parquet")
_TEXTS = ("text", "lightgbm.txt")
_JSONS = ("json", "lightgbm.json")
_TEXT_FILES = (".txt", ".csv", ".tsv", ".json", ".md", ".log", ".yaml", ".yml", ".toml")
_SERIES_COLUMN = "__loopml_series__"  # how the pandas materializer stores a Series


@dataclass(frozen=True, slots=True)
class Preview:
    """``kind`` is ``"table"`` (``columns`` and ``rows``) or ``"text"`` (``text``);
    ``total_rows`` is the table's row count, ``clipped`` says there is more than shown."""

    kind: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int | None = None
    text: str = ""
    clipped: bool = False


def preview(
    client: Client, record: ArtifactRecord, *, rows: int = ROWS, limit: int = LIMIT
) -> Preview | None:
    """The preview of the artifact ``record`` describes, or None when it has none."""
    kind = record.materializer
    name = str(record.metadata.get("name", "")).lower() if kind == "file" else ""
    try:
        if kind in _TABLES or (kind == "file" and name.endswith(".parquet")):
            return _table(client, record.digest, rows)
        if kind in _JSONS or (kind == "file" and name.endswith(".json")):
            return _text(client, record.digest, limit, pretty=True)
        if kind in _TEXTS or (kind == "file" and name.endswith(_TEXT_FILES)):
            return _text(client, record.digest, limit, pretty=False)
    except (LoopmlError, OSError, ValueError, ImportError):
        return None
    return None


def _table(client: Client, digest: str, rows: int) -> Preview:
    import pyarrow.parquet as pq

    with pq.ParquetFile(client.artifacts.local_path(digest)) as f:
        total = f.metadata.num_rows
        batch = next(f.iter_batches(batch_size=rows), None)
    names = [] if batch is None else list(batch.schema.names)
    data = {} if batch is None else batch.to_pydict()
    shown = [n for n in names if not (n.startswith("__index_level_") and n.endswith("__"))] or names
    count = 0 if batch is None else batch.num_rows
    return Preview(
        kind="table",
        columns=["value" if n == _SERIES_COLUMN else n for n in shown],
        rows=[[_cell(data[n][i]) for n in shown] for i in range(count)],
        total_rows=total,
        clipped=total > count,
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    text = "" if value is None else str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _text(client: Client, digest: str, limit: int, *, pretty: bool) -> Preview:
    path = client.artifacts.local_path(digest)
    with open(path, "rb") as f:
        head = f.read(limit + 1)
    clipped = len(head) > limit
    text = head[:limit].decode("utf-8", errors="replace")
    if pretty and not clipped:
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
        if len(text) > limit:
            text, clipped = text[:limit], True
    return Preview(kind="text", text=text, clipped=clipped)
