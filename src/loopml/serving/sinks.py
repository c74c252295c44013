"""Output files of batch scoring: written a chunk at a time, renamed into place at the end.

Rows are appended with pyarrow's ``ParquetWriter`` or ``CSVWriter`` to a temporary file in
the output's folder, which replaces the output only once the whole run succeeded: a failed
run never leaves half a file under the output's name. CSV output neutralizes text cells a
spreadsheet would run as formulas (:func:`neutralize`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import pyarrow as pa

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# OWASP "CSV injection": a spreadsheet runs a cell starting with one of these as a formula.
FORMULA_START = r"^[=+\-@\t\r]"
# A plain number ("-5", "+1.5e3") starts with + or - but a spreadsheet reads it as a number.
PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


class Sink:
    """One output file, written through a temporary file renamed into place at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.csv = SUFFIXES[path.suffix.lower()] == "csv"
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        self.writer: Any = None
        self.schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        import pyarrow as pa

        if self.csv:
            table = neutralize(table)
        if self.writer is None:
            self.schema = table.schema
            try:
                self.writer = self._open(table.schema)
            except OSError as exc:
                raise InvalidParameterError(
                    f"Cannot write {str(self.path)!r} ({exc.strerror or exc}). Check the folder "
                    "and that you may write there."
                ) from exc
        elif table.schema != self.schema:
            table = table.cast(self.schema)
        try:
            self.writer.write_table(table)
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise InvalidParameterError(
                f"Cannot write {str(self.path)!r}: {exc}; expected columns that CSV can hold. "
                "Write Parquet instead (-o scored.parquet)."
            ) from exc

    def _open(self, schema: pa.Schema) -> Any:
        if self.csv:
            import pyarrow.csv as pcsv

            options = pcsv.WriteOptions(quoting_style="needed")
            return pcsv.CSVWriter(str(self.tmp), schema, write_options=options)
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Dictionary-encoding unique ids and continuous floats only to drop the dictionary
        # again costs most of the writing time (measured: 5x); repeated values keep it.
        repeated = [
            f.name for f in schema if f.name != "prediction_id" and not pa.types.is_floating(f.type)
        ]
        return pq.ParquetWriter(str(self.tmp), schema, use_dictionary=repeated)

    def finish(self, empty: pa.Schema) -> None:
        if self.writer is None:  # no rows: still a file, with the columns
            self.write(empty.empty_table())
        self.writer.close()
        self.writer = None
        os.replace(self.tmp, self.path)

    def abandon(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # the run already failed; its error is the one to show
                pass
        self.tmp.unlink(missing_ok=True)


def neutralize(table: pa.Table) -> pa.Table:
    """Text cells (and column names) a spreadsheet would run as formulas, with a leading ``'``.

    A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets one
    (OWASP's advice on CSV injection), unless it is a plain number such as ``-5``, which a
    spreadsheet reads as that number. Number columns are left as they are.

    Example:
        >>> import pyarrow as pa
        >>> neutralize(pa.table({"x": ["=1+1", "-5", "ok"]})).column("x").to_pylist()
        ["'=1+1", '-5', 'ok']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = kind.value_type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            risky = pc.and_(
                pc.match_substring_regex(column, FORMULA_START),
                pc.invert(pc.match_substring_regex(column, PLAIN_NUMBER)),
            )
            quote, empty = pa.scalar("'", kind), pa.scalar("", kind)
            column = pc.if_else(risky, pc.binary_join_element_wise(quote, column, empty), column)
        columns.append(column)
    names = [_safe_name(name) for name in table.column_names]
    return pa.table(columns, names=names)


def _safe_name(name: str) -> str:
    risky = re.match(FORMULA_START, name) and not re.match(PLAIN_NUMBER, name)
    return f"'{name}" if risky else name
