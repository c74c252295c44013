"""Batch scoring: a CSV or Parquet file in, the same rows with predictions out, in chunks.

Memory stays flat in the input size: the file is read ``chunk_rows`` rows at a time
(Parquet with ``ParquetFile.iter_batches``, CSV with pyarrow's streaming reader), each
chunk is checked with the served model's one input check, scored and appended to the output
with pyarrow's incremental writers. The output goes to a temporary file beside it, renamed
into place only when every row is done, so a failed run never leaves half a file under the
output's name.

Reading is ``chunks.py``, writing ``sinks.py``; this module checks and scores.

A row that does not fit the model stops the run with an error naming its line (CSV, as an
editor counts) or row (Parquet), its column, its value and what was expected; with
``rejects=PATH`` such rows go to that file with an ``error`` column instead, and the good
rows are scored. CSV output neutralizes text cells a spreadsheet would run as formulas.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from loopml.registry.schema_checks import SchemaProblem
    from loopml.serving.chunks import ChunkReader
    from loopml.serving.served import Checked, Outputs, ServedModel
    from loopml.tracking.client import Client

Progress = Callable[[int, "int | None"], None]
# Called per scored batch with its checked rows, their answers and their ids (an Arrow array).
OnChunk = Callable[["Checked", "Outputs", "pa.Array"], None]

SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class BatchResult:
    """What :func:`score_file` did."""

    scored: int
    rejected: int
    seconds: float
    rows_per_second: float
    output: Path
    rejects: Path | None
    runtime: str
    model: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "scored": self.scored,
            "rejected": self.rejected,
            "seconds": self.seconds,
            "rows_per_second": self.rows_per_second,
            "output": str(self.output),
            "rejects": None if self.rejects is None else str(self.rejects),
            "runtime": self.runtime,
            "model": self.model,
        }


def score_file(
    ref_or_served: str | ServedModel,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    chunk_rows: int = 100_000,
    rejects: str | os.PathLike[str] | None = None,
    runtime: str = "auto",
    client: Client | None = None,
    progress: Progress | None = None,
    on_chunk: OnChunk | None = None,
    log_sample: float = 0.01,
) -> BatchResult:
    """Score every row of a CSV or Parquet file and write the rows with their predictions.

    The output (``.parquet``/``.pq`` or ``.csv``, by suffix) holds the input's columns, then
    ``prediction``, for a classifier one ``proba_<class>`` column per class, and
    ``prediction_id``. An existing output file is replaced, once the run succeeds.

    Args:
        ref_or_served: a model reference (``churn@production``) or a ``ServedModel``.
        source: a ``.csv``, ``.parquet`` or ``.pq`` file.
        output: where to write the scored rows.
        chunk_rows: rows read, checked and scored at a time (memory grows with it).
        rejects: a ``.csv``/``.parquet`` file for the rows that do not fit the model, each
            with an ``error`` column; without it the first such row stops the run.
        runtime: ``auto``, ``onnx`` or ``native`` (see ``loopml.serving.served``); unused
            when a ``ServedModel`` is given.
        client: the store to load the model from (default: the project's).
        progress: called after each chunk with the rows done and the total (for a CSV file an
            estimate from the bytes read, exact at the end).
        on_chunk: called with the checked rows, their outputs and their ids (an Arrow
            string array) for every scored batch.
        log_sample: the share of rows logged to the prediction log (1 % by default), as
            variant ``batch:REF``, for monitoring (read them with ``loopml.predictions``);
            0 logs none.

    Returns:
        A :class:`BatchResult`.

    Raises:
        InvalidParameterError: a bad path or suffix, a file that cannot be read (naming
            the line and column), a row that does not fit the model (naming its line or row,
            column, value and what was expected).

    Example:
        >>> score_file("churn@production", "customers.parquet", "scored.parquet")  # doctest: +SKIP
        BatchResult(scored=1000000, rejected=0, ...)
    """
    src, out, rej = _paths(source, output, rejects)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InvalidParameterError(
            f"score_file chunk_rows: got {chunk_rows!r}; expected a whole number >= 1."
        )
    from loopml.serving.chunks import ChunkReader

    served = _served(ref_or_served, runtime, client)
    started = time.perf_counter()  # loading the model is not scoring
    reader = ChunkReader(src, chunk_rows)
    sampler = _LogSampler(served, log_sample, client, ref_or_served) if log_sample else None
    hooks = [h for h in (on_chunk, sampler) if h is not None]
    job = _Job(served, reader, out, rej, _both(hooks) if hooks else None)
    try:
        for offset, chunk in reader.chunks():
            job.score(offset, chunk)
            if progress is not None:
                progress(reader.rows, reader.estimate())
        job.finish()
    except BaseException:
        job.abandon()
        raise
    finally:
        if sampler is not None:
            sampler.log.close()  # drain: every sampled row of a finished run is written
    if progress is not None:
        progress(reader.rows, reader.rows)
    seconds = time.perf_counter() - started
    return BatchResult(
        scored=job.scored,
        rejected=job.rejected,
        seconds=seconds,
        rows_per_second=job.scored / seconds if seconds > 0 else 0.0,
        output=out,
        rejects=rej,
        runtime=served.runtime,
        model=served.label,
    )


# -- the prediction log ----------------------------------------------------------------------


def _both(hooks: list[OnChunk]) -> OnChunk:
    def call(checked: Checked, outputs: Outputs, ids: pa.Array) -> None:
        for hook in hooks:
            hook(checked, outputs, ids)

    return call


class _LogSampler:
    """Logs a random ``rate`` of the scored rows, like the online server's log."""

    def __init__(
        self, served: ServedModel, rate: float, client: Client | None, ref: str | ServedModel
    ) -> None:
        import numpy as np

        from loopml.serving.logbook import PredictionLog
        from loopml.tracking.client import given_or_default

        self.log = PredictionLog(given_or_default(client), sample_rate=rate)
        self.rate = rate
        self.served = served
        self.variant = f"batch:{ref if isinstance(ref, str) else served.label}"
        self.rng = np.random.default_rng()

    def __call__(self, checked: Checked, outputs: Outputs, ids: pa.Array) -> None:
        import numpy as np

        rows = np.flatnonzero(self.rng.random(checked.n) < self.rate)
        if rows.size:
            version = self.served.version
            self.log.submit(
                version.name,
                version.number,
                self.variant,
                ids.take(rows).to_pylist(),
                checked.take(rows),
                outputs.take(rows),
            )


# -- paths and the model ---------------------------------------------------------------------


def _paths(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    rejects: str | os.PathLike[str] | None,
) -> tuple[Path, Path, Path | None]:
    src, out = Path(source), Path(output)
    if src.suffix.lower() not in SUFFIXES:
        raise InvalidParameterError(
            f"Input file {str(src)!r}: got the suffix {src.suffix or '(none)'!r}; expected "
            f"one of {', '.join(SUFFIXES)}. Convert it to CSV or Parquet first."
        )
    if not src.is_file():
        hint = "it is a folder" if src.is_dir() else "no such file"
        raise InvalidParameterError(
            f"Input file {str(src)!r}: {hint} (working directory {os.getcwd()!r}). Check the path."
        )
    named = [("output", out)] + ([("rejects", Path(rejects))] if rejects is not None else [])
    for what, path in named:
        if path.suffix.lower() not in SUFFIXES:
            raise InvalidParameterError(
                f"The {what} file {str(path)!r}: got the suffix {path.suffix or '(none)'!r}; "
                f"expected one of {', '.join(SUFFIXES)}. Name it e.g. scored.parquet."
            )
        if not path.parent.is_dir():
            raise InvalidParameterError(
                f"The {what} file {str(path)!r}: the folder {str(path.parent)!r} does not "
                "exist. Create it first."
            )
        if path.is_dir():
            raise InvalidParameterError(
                f"The {what} file {str(path)!r}: it is a folder; expected a file name."
            )
        if path.resolve() == src.resolve():
            raise InvalidParameterError(
                f"The {what} file {str(path)!r} is the input file; expected another file, so "
                "the input is not overwritten while it is read. Choose another name."
            )
    rej = Path(rejects) if rejects is not None else None
    if rej is not None and rej.resolve() == out.resolve():
        raise InvalidParameterError(
            f"The rejects file {str(rej)!r} is the output file; expected two different files."
        )
    return src, out, rej


def _served(ref_or_served: str | ServedModel, runtime: str, client: Client | None) -> ServedModel:
    from loopml.serving.served import ServedModel, load_served

    if isinstance(ref_or_served, ServedModel):
        served = ref_or_served
    elif isinstance(ref_or_served, str):
        served = load_served(ref_or_served, runtime=runtime, client=client)
    else:
        raise InvalidParameterError(
            f"score_file model: got {type(ref_or_served).__name__}; expected a reference such "
            "as 'churn@production' or a ServedModel."
        )
    if served.schema is None:
        raise InvalidParameterError(
            f"{served.label} has no input schema, so a file's rows cannot be checked against "
            "it. Register it with X= (the training frame) so its columns are known."
        )
    return served


# -- scoring ---------------------------------------------------------------------------------


class _Job:
    """Checks, scores and writes the chunks of one run; counts what it did."""

    def __init__(
        self,
        served: ServedModel,
        reader: ChunkReader,
        output: Path,
        rejects: Path | None,
        on_chunk: OnChunk | None,
    ) -> None:
        from loopml.serving.sinks import Sink

        assert served.schema is not None
        self.served = served
        self.schema = served.schema
        self.reader = reader
        self.out = Sink(output)
        self.rejects = Sink(rejects) if rejects is not None else None
        self.on_chunk = on_chunk
        self.scored = 0
        self.rejected = 0
        classes = served.classes
        self.added = ["prediction", *(f"proba_{c}" for c in classes or ()), "prediction_id"]
        self._named = False

    def _check_names(self) -> None:
        clash = [name for name in self.added + ["error"] if name in self.reader.names]
        if self.rejects is None and "error" in clash:
            clash.remove("error")
        if clash:
            raise InvalidParameterError(
                f"{self.reader.where}: has the columns {clash}, which scoring adds; expected "
                "none of them in the input. Rename or drop them first."
            )
        self._named = True

    def score(self, offset: int, chunk: pa.Table) -> None:
        import numpy as np

        from loopml.registry.schema_checks import SchemaError
        from loopml.serving.chunks import source_frame

        if not self._named:
            self._check_names()
        frame = source_frame(chunk, self.schema, text=self.reader.csv)
        try:
            parts = [(np.arange(chunk.num_rows), self.served.check(frame))]
            bad: dict[int, list[SchemaProblem]] = {}
        except SchemaError as exc:
            if self.rejects is None:
                raise self._stop(exc, offset, frame) from exc
            parts, bad = self._sort_out(frame, exc, offset)
        if bad:
            self._reject(chunk, frame, bad)
        if not parts:
            return
        outputs = [self.served.predict(checked) for _, checked in parts]
        from loopml.serving.ids import new_id_array

        ids = new_id_array(sum(checked.n for _, checked in parts))
        if self.on_chunk is not None:
            start = 0
            for (_, checked), out in zip(parts, outputs, strict=True):
                self.on_chunk(checked, out, ids.slice(start, checked.n))
                start += checked.n
        good = np.concatenate([idx for idx, _ in parts])
        rows = chunk if len(good) == chunk.num_rows else chunk.take(good)
        self.out.write(self._scored_table(rows, outputs, ids))
        self.scored += len(good)

    def _sort_out(
        self, frame: pd.DataFrame, first: Any, offset: int
    ) -> tuple[list[tuple[np.ndarray[Any, Any], Checked]], dict[int, list[SchemaProblem]]]:
        """The rows that fit (as checked parts, in row order) and the problems of those that do
        not, found with the input check itself so the rules stay in one place.

        The check names at most five rows per problem. Those rows are certainly bad, so each
        failed check rejects at least one row, and the rest is checked again: whole when no
        problem named five rows (then it named them all), else in halves. A chunk of n rows
        with b bad rows therefore costs at most 2b + 1 checks, each of at most n rows, and
        the halving keeps the rows checked per level of the split at most n; a chunk without
        bad rows costs the one check it always had.
        """
        import numpy as np

        from loopml.registry.schema_checks import SchemaError

        good: list[tuple[np.ndarray[Any, Any], Checked]] = []
        bad: dict[int, list[SchemaProblem]] = {}
        todo: list[tuple[np.ndarray[Any, Any], SchemaError | None]] = [
            (np.arange(len(frame)), first)
        ]
        while todo:
            idx, error = todo.pop()
            if error is None:
                try:
                    good.append((idx, self.served.check(frame.iloc[idx])))
                    continue
                except SchemaError as exc:
                    error = exc
            named: set[int] = set()
            saturated = False
            if any(not problem.rows for problem in error.problems):
                # not a problem of some rows but of the whole input (a missing column)
                whole = [
                    replace(p, rows=tuple(int(idx[r]) for r in p.rows)) for p in error.problems
                ]
                raise self._stop(SchemaError(whole), offset, frame) from error
            for problem in error.problems:
                saturated = saturated or len(problem.rows) >= 5
                for r in problem.rows:
                    bad.setdefault(int(idx[r]), []).append(problem)
                    named.add(r)
            rest = np.delete(idx, sorted(named))
            if len(rest) > 1 and saturated:
                half = len(rest) // 2
                todo += [(rest[half:], None), (rest[:half], None)]
            elif len(rest):
                todo.append((rest, None))
        good.sort(key=lambda part: int(part[0][0]))
        return good, bad

    def _reject(self, chunk: pa.Table, frame: pd.DataFrame, bad: dict[int, list[Any]]) -> None:
        import pyarrow as pa

        assert self.rejects is not None
        rows = sorted(bad)
        reasons = ["; ".join(_reason(p, frame.iloc[r].get(p.column)) for p in bad[r]) for r in rows]
        table = chunk.take(pa.array(rows, pa.int64()))
        self.rejects.write(table.append_column("error", pa.array(reasons, pa.string())))
        self.rejected += len(rows)

    def _scored_table(self, rows: pa.Table, outputs: list[Outputs], ids: pa.Array) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        predictions = np.concatenate([o.predictions for o in outputs])
        table = rows.append_column("prediction", pa.array(predictions))
        classes = self.served.classes
        if classes is not None:  # a model without probabilities still gets the columns, empty
            n = len(predictions)
            parts = [
                o.probabilities
                if o.probabilities is not None
                else np.full((o.predictions.shape[0], len(classes)), np.nan)
                for o in outputs
            ]
            stacked: np.ndarray[Any, Any] = (
                np.concatenate(parts) if n else np.empty((0, len(classes)))
            )
            for i, label in enumerate(classes):
                table = table.append_column(
                    f"proba_{label}", pa.array(stacked[:, i].astype("float64"), from_pandas=True)
                )
        return table.append_column("prediction_id", ids)

    def _empty_schema(self) -> pa.Schema:
        import pyarrow as pa

        base = self.reader.arrow_schema or pa.schema([])
        classes = self.served.classes
        kind = pa.array(classes).type if classes else pa.float64()
        fields = [*base, pa.field("prediction", kind)]
        fields += [pa.field(f"proba_{c}", pa.float64()) for c in classes or ()]
        return pa.schema([*fields, pa.field("prediction_id", pa.string())])

    def _stop(self, error: Any, offset: int, frame: pd.DataFrame) -> InvalidParameterError:
        """The error that stops a run: each problem at its rows' places in the file."""
        rows = sorted({offset + r for p in error.problems for r in p.rows})
        if self.reader.csv:
            from loopml.data.csv_lines import lines_of_rows

            lines = lines_of_rows(self.reader.path, rows)
            place = {row: f"line {lines.get(row, row + 2)}" for row in rows}
        else:
            place = {row: f"row {row + 1}" for row in rows}
        said = []
        for p in error.problems:
            if not p.rows:
                said.append(f"  - {p.describe()}")
                continue
            first, *others = (offset + r for r in p.rows)
            also = ", ".join(place[r] for r in others) + (", …" if len(p.rows) >= 5 else "")
            more = f" (also {also})" if others else ""
            value = frame.iloc[first - offset].get(p.column)
            said.append(f"  - {place[first]}{more}, {_reason(p, value)}. {p.fix}".rstrip())
        n = len(error.problems)
        tail = ""
        if rows:
            tail = (
                "\nFix those rows, or pass rejects= (--rejects PATH) to score the other rows "
                "and write these to that file."
            )
        return InvalidParameterError(
            f"{self.reader.where} does not fit {self.served.label} "
            f"({n} problem{'s' if n != 1 else ''}):\n" + "\n".join(said) + tail
        )

    def finish(self) -> None:
        import pyarrow as pa

        self.out.finish(self._empty_schema())
        if self.rejects is not None:
            base = self.reader.arrow_schema or pa.schema([])
            self.rejects.finish(pa.schema([*base, pa.field("error", pa.string())]))

    def abandon(self) -> None:
        self.out.abandon()
        if self.rejects is not None:
            self.rejects.abandon()


def _reason(problem: SchemaProblem, value: Any) -> str:
    """One problem of one row: ``column 'age': got 'abc'; expected float: numbers``."""
    from loopml.registry.schema_checks import short

    if problem.rule == "missing_values":
        got = "a missing value"
    else:
        got = short(value.item() if hasattr(value, "item") else value, 60)
    return f"column {problem.column!r}: got {got}; expected {problem.expected}"
