"""Reading a CSV or Parquet file in chunks of rows, for batch scoring.

Parquet is read with ``ParquetFile.iter_batches``, CSV with pyarrow's streaming reader,
and both are cut into chunks of exactly ``chunk_rows`` rows, so memory is flat in the
file's size and the chunking never changes a result.

A CSV file is read with every column as text. A CSV file does not say its types, and
pyarrow's streaming reader fixes a column's type from its first block and then fails on a
later block that does not fit (an integer column with ``3.5`` on line 2,000,000). As text
every block reads; only the model's columns are converted, chunk by chunk, to the kind the
model needs (:func:`source_frame`), and a value that does not convert stays text so that
the input check names exactly its row. When pyarrow fails, or a cheap check looks wrong,
``loopml.data.tables.csv_failure`` and ``csv_lines.scan`` name the line and the column, as
for every other CSV file loopml reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from loopml.registry.schema import ModelSchema

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_MIN_BLOCK, _MAX_BLOCK = 1 << 20, 1 << 28
_TRUE, _FALSE = ("1", "True", "TRUE", "true"), ("0", "False", "FALSE", "false")  # pyarrow's


class ChunkReader:
    """The file's rows as pyarrow Tables of exactly ``chunk_rows`` rows (the last fewer)."""

    def __init__(self, path: Path, chunk_rows: int) -> None:
        self.path = path
        self.chunk_rows = chunk_rows
        self.csv = SUFFIXES[path.suffix.lower()] == "csv"
        self.where = f"{'CSV' if self.csv else 'Parquet'} file {str(path)!r}"
        self.rows = 0
        self.size = max(path.stat().st_size, 1)
        self._file: Any = None
        self._total: int | None = None
        self.names: list[str] = []
        self.arrow_schema: pa.Schema | None = None

    def estimate(self) -> int | None:
        if not self.csv:
            return self._total
        done = self._file.tell() if self._file is not None else 0
        return max(self.rows, round(self.rows * self.size / done)) if done else None

    def chunks(self) -> Iterator[tuple[int, pa.Table]]:
        import pyarrow as pa

        pending: list[pa.RecordBatch] = []
        held = 0
        batches = self._csv_batches() if self.csv else self._parquet_batches()
        for batch in batches:
            pending.append(batch)
            held += batch.num_rows
            while held >= self.chunk_rows:
                table = pa.Table.from_batches(pending)
                chunk, rest = table.slice(0, self.chunk_rows), table.slice(self.chunk_rows)
                pending, held = rest.to_batches(), rest.num_rows
                yield self._emit(chunk)
        if held:
            yield self._emit(pa.Table.from_batches(pending))

    def _emit(self, chunk: pa.Table) -> tuple[int, pa.Table]:
        offset = self.rows
        self.rows += chunk.num_rows
        return offset, chunk

    def _parquet_batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from loopml.data.tables import unreadable_parquet

        try:
            parquet = pq.ParquetFile(self.path)
            self._total = parquet.metadata.num_rows
            self.arrow_schema = parquet.schema_arrow
            self.names = list(self.arrow_schema.names)
            batches = parquet.iter_batches(batch_size=self.chunk_rows)
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                yield batch
        except (pa.ArrowException, OSError) as exc:
            raise unreadable_parquet(self.path, exc) from exc

    def _block_size(self) -> int:
        """pyarrow's block, sized to hold about ``chunk_rows`` rows (from the first MiB)."""
        with self.path.open("rb") as raw:
            head = raw.read(1 << 20)
        lines = head.count(b"\n") or head.count(b"\r") or 1
        wanted = len(head) / lines * self.chunk_rows * 1.1
        return int(min(max(wanted, _MIN_BLOCK), _MAX_BLOCK))

    def _csv_batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        from loopml.data.csv_lines import header_suspicious, scan
        from loopml.data.tables import csv_failure, repeats_header, suspicious_bytes

        def located(problem: Any, exc: BaseException | None = None) -> None:
            if problem is not None:
                raise problem from exc

        if suspicious_bytes(self.path):  # a NUL byte, a quote never closed: name the line
            located(scan(self.path, self.where).problem)
        block = self._block_size()
        # A quoted value may span lines; without newlines_in_values pyarrow splits blocks at
        # any newline and then fails on a valid file ("out of sync").
        parse = pcsv.ParseOptions(newlines_in_values=True)
        try:
            names = self._header(block, parse)
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
            names = csv_failure(self.path, self.where, exc)  # raises, or: a header only
            self.names = names
            self.arrow_schema = pa.schema([(n, pa.string()) for n in names])
            return
        if header_suspicious(names):
            located(scan(self.path, self.where).problem)
        self.names = names
        self.arrow_schema = pa.schema([(n, pa.string()) for n in names])
        convert = pcsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=True
        )
        emitted = False
        while True:
            self._file = pa.OSFile(str(self.path))
            try:
                reader = pcsv.open_csv(
                    self._file,
                    read_options=pcsv.ReadOptions(block_size=block),
                    parse_options=parse,
                    convert_options=convert,
                )
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        return
                    if repeats_header(batch, names):  # two files joined: name the line
                        located(scan(self.path, self.where).problem)
                    emitted = True
                    yield batch
            except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
                if "straddl" in str(exc) and not emitted and block < _MAX_BLOCK:
                    block = min(max(self.size + 1, block * 4), (1 << 31) - 1)
                    continue  # a row longer than the block: read again with one as big as the file
                if "straddl" in str(exc):
                    raise InvalidParameterError(
                        f"{self.where}: a row after data row {self.rows:,} is longer than the "
                        f"read block ({block >> 20} MiB); expected rows shorter than that. Pass "
                        "a larger chunk_rows (--chunk-rows), which reads bigger blocks."
                    ) from exc
                csv_failure(self.path, self.where, exc)
                raise  # csv_failure raised, unless the file is a header only (not here)
            finally:
                self._file.close()

    def _header(self, block: int, parse: Any) -> list[str]:
        import pyarrow.csv as pcsv

        with pcsv.open_csv(
            self.path, read_options=pcsv.ReadOptions(block_size=block), parse_options=parse
        ) as peek:
            return list(peek.schema.names)


def source_frame(chunk: pa.Table, schema: ModelSchema, *, text: bool) -> pd.DataFrame:
    """The model's columns of a chunk as a pandas frame for the input check.

    ``text``: the chunk was read from CSV as text; each column is converted to the kind the
    model needs, as pyarrow's CSV reader would read it, and a value that does not convert
    stays text so that the check names its row.
    """
    import pandas as pd

    present = [spec for spec in schema.inputs if spec.name in chunk.column_names]
    data: dict[str, Any] = {}
    for spec in present:
        column = chunk.column(spec.name)
        data[spec.name] = _from_text(column, spec.kind) if text else column.to_pandas()
    return pd.DataFrame(data, columns=[s.name for s in present], index=range(chunk.num_rows))


def _from_text(column: pa.ChunkedArray, kind: str) -> pd.Series:
    import pandas as pd
    import pyarrow as pa

    if kind in ("float", "integer"):
        try:
            return column.cast(pa.float64() if kind == "float" else pa.int64()).to_pandas()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            words = column.to_pandas()
            numbers = pd.to_numeric(words, errors="coerce")
            mixed = numbers.astype(object)
            unparsed = numbers.isna() & words.notna()
            mixed[unparsed] = words[unparsed]
            return mixed
    words = column.to_pandas()
    if kind == "boolean":
        mapped = words.map({**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)})
        return mapped.astype(object).where(mapped.notna() | words.isna(), words)
    return words
