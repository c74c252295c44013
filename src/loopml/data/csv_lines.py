"""Find the line and column of what is wrong in a CSV file, in plain Python.

``tables.py`` reads CSV files with pyarrow, which is fast but says little when a file is
malformed (no line number from its threaded reader), and accepts some files that would
load wrongly: a never-closed quote swallows the rest of the file, a ``;``-separated file
becomes one column, NUL bytes become text. So the reader runs cheap checks on what pyarrow
returns and, only when pyarrow fails or a check is suspicious, calls :func:`scan`, which
walks the file record by record and names the first problem: the line (1-based, as an
editor counts, blank lines and the lines inside quoted values included), the column (by
its header name where it has one, else by its 1-based number), what it found and the fix.

The file is read as Latin-1, which maps each byte to one character, so a byte that is not
UTF-8 can be found and named instead of stopping the scan; a field is decoded as UTF-8
separately. Every problem is an ``InvalidParameterError``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from loopml.errors import InvalidParameterError

UTF8_BOM = "\xef\xbb\xbf"  # the UTF-8 byte-order mark, as Latin-1 characters
OTHER_DELIMITERS = (";", "\t", "|")
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_QUOTED_REST = re.compile(r'[^"]*(?:""[^"]*)*"(?!")')  # the rest of a quoted value, to its close
_SEPARATOR = re.compile(r",|\r\n|\r|\n")
_FIELD_LIMIT = 2**31 - 1  # pyarrow reads fields of any size, so the scan must too
_TO_UTF8 = (
    "Re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`), or read it with "
    "pandas.read_csv(..., encoding='latin-1') and pass the DataFrame."
)


@dataclass
class Scan:
    """What :func:`scan` found: the first problem, or the header and the number of rows."""

    problem: InvalidParameterError | None = None
    header: list[str] = field(default_factory=list)
    rows: int = 0


def scan(path: Path, where: str | None = None) -> Scan:
    """Walk ``path`` record by record; stop at the first problem. ``where`` names the file
    in errors (default ``CSV file 'PATH'``)."""
    where = where or f"CSV file {str(path)!r}"
    try:
        with path.open("rb") as raw:
            start = raw.read(2)
        if start in (b"\xff\xfe", b"\xfe\xff"):
            return Scan(
                _error(
                    where,
                    1,
                    None,
                    "starts with a UTF-16 byte-order mark; expected UTF-8 text. Re-save "
                    "the file as UTF-8 (e.g. `iconv -f utf-16 -t utf-8`).",
                )
            )
        limit = csv.field_size_limit()
        csv.field_size_limit(_FIELD_LIMIT)
        try:
            with path.open(encoding="latin-1", newline="") as text:
                return _scan(where, text)
        finally:
            csv.field_size_limit(limit)
    except OSError as exc:
        return Scan(
            InvalidParameterError(
                f"{where}: cannot be read ({exc.strerror or exc}). Check that it exists "
                "and that you may read it."
            )
        )


def lines_of_rows(path: Path, rows: Iterable[int]) -> dict[int, int]:
    """The line (1-based, as an editor counts) on which each data row starts; rows are 0-based
    positions after the header, as a reader that skips blank lines numbers them.

    One pass over the file up to the last row asked for; for error messages only.
    """
    wanted = set(rows)
    found: dict[int, int] = {}
    if not wanted:
        return found
    last = max(wanted)
    limit = csv.field_size_limit()
    csv.field_size_limit(_FIELD_LIMIT)
    try:
        with path.open(encoding="latin-1", newline="") as text:
            records = _records(text)
            next(records, None)  # the header
            for row, (line, _fields, _raw) in enumerate(records):
                if row in wanted:
                    found[row] = line
                if row >= last:
                    break
    finally:
        csv.field_size_limit(limit)
    return found


def _scan(where: str, text: IO[str]) -> Scan:
    records = _records(text)
    first = next(records, None)
    if first is None:
        return Scan(
            InvalidParameterError(
                f"{where}: is empty; expected a header line, then rows. "
                "Check that the file was written completely."
            )
        )
    line, header, raw = first
    pending = next(records, None)
    problem = _check_header(where, line, header)
    if problem is None and pending is None:  # a header that runs on to the end of the file
        problem = _unclosed_quote(where, line, "".join(raw), [])
    if problem is not None:
        return Scan(problem)
    names = [name.encode("latin-1").decode("utf-8") for name in header]
    rows = 0
    while pending is not None:
        line, fields, raw = pending
        pending = next(records, None)
        if pending is None:  # only the last record can run on to the end of the file
            problem = _unclosed_quote(where, line, "".join(raw), names)
            if problem is not None:
                return Scan(problem)
        problem = _check_row(where, line, fields, header, names)
        if problem is not None:
            return Scan(problem)
        rows += 1
    return Scan(header=names, rows=rows)


def _records(text: IO[str]) -> Iterator[tuple[int, list[str], list[str]]]:
    """``(first line, fields, raw lines)`` of each non-blank record."""
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for number, line in enumerate(text):
            if number == 0 and line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM) :]
            consumed.append(line)
            yield line

    line = 1
    for fields in csv.reader(lines(), strict=False):
        raw = consumed[:]
        consumed.clear()
        if fields:  # a blank line is skipped, as pyarrow skips it
            yield line, fields, raw
        line += max(len(raw), 1)


def _error(where: str, line: int, column: str | int | None, message: str) -> InvalidParameterError:
    at = f", column {column!r}" if isinstance(column, str) else ""
    at = f", column {column}" if isinstance(column, int) else at
    return InvalidParameterError(f"{where}, line {line}{at}: {message}")


def _line_of(line: int, before: list[str], value: str, offset: int) -> int:
    """The line of ``value[offset]`` in a record starting at ``line`` after fields ``before``."""
    return (
        line + sum(len(_NEWLINE.findall(f)) for f in before) + len(_NEWLINE.findall(value[:offset]))
    )


def _check_text(
    where: str, line: int, fields: list[str], columns: Sequence[str | int]
) -> InvalidParameterError | None:
    """A field that is not UTF-8 or holds a NUL byte."""
    for i, value in enumerate(fields):
        column = columns[i] if i < len(columns) else i + 1
        data = value.encode("latin-1")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = data.decode("utf-8", "replace")
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            return _error(
                where,
                _line_of(line, fields[:i], value, exc.start),
                column,
                f"got the byte {data[exc.start]:#04x} in {shown!r}, which is not UTF-8; "
                f"expected UTF-8 text. {_TO_UTF8}",
            )
        if "\x00" in value:
            return _error(
                where,
                _line_of(line, fields[:i], value, value.index("\x00")),
                column,
                "got a NUL byte (0x00); expected text. The file may be binary or damaged "
                "(a crash can leave zeros behind): export it again.",
            )
    return None


def header_suspicious(names: list[str]) -> bool:
    """Is something wrong with these column names (as pyarrow read them)?"""
    return "\x00" in "".join(names) or _name_problem(names) is not None


def _check_header(where: str, line: int, header: list[str]) -> InvalidParameterError | None:
    problem = _check_text(where, line, header, [i + 1 for i in range(len(header))])
    if problem is not None:
        return problem
    found = _name_problem([name.encode("latin-1").decode("utf-8") for name in header])
    return None if found is None else _error(where, line, *found)


def _name_problem(names: list[str]) -> tuple[int | None, str] | None:
    """``(column number or None, message)`` for a header that is not one."""
    if len(names) == 1:
        for sep in OTHER_DELIMITERS:
            if len([part for part in names[0].split(sep) if part.strip()]) > 1:
                shown = "\\t" if sep == "\t" else sep
                return None, (
                    f"the header {names[0]!r} is one column holding {shown!r}; expected "
                    "columns separated by commas. Re-save the file with commas, or read it "
                    f"with pandas.read_csv(path, sep={sep!r}) and pass the DataFrame."
                )
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if "\ufeff" in name:
            return i, (
                f"got a byte-order mark (U+FEFF) inside the name {name!r}; expected it at "
                "most once, at the start of the file. Re-save the file as UTF-8."
            )
        if not name.strip():
            return i, (
                f"the header has no name for column {i}; expected a name for each column. "
                "Name it, or remove the extra comma at the end of each line."
            )
        if name in seen:
            return i, (
                f"the name {name!r} is also the name of column {seen[name]}; expected "
                "unique column names. Rename one of them."
            )
        seen[name] = i
    if all(_NUMBER.fullmatch(name) for name in names):
        return None, (
            f"the header {names} holds only numbers; expected column names (the file seems "
            "to have no header line). Add one, or read it with "
            "pandas.read_csv(path, header=None) and pass the DataFrame."
        )
    return None


def _check_row(
    where: str, line: int, fields: list[str], header: list[str], names: list[str]
) -> InvalidParameterError | None:
    problem = _check_text(where, line, fields, names)
    if problem is not None:
        return problem
    n, expected = len(fields), len(header)
    if n > expected:
        return _error(
            where,
            line,
            expected + 1,
            f"got {n} fields; expected {expected} as in the header. Quote a value that "
            'contains a comma ("a,b"), or remove the extra fields.',
        )
    if n < expected:
        return _error(
            where,
            line,
            names[n],
            f"got {n} field{'s' if n != 1 else ''}; expected {expected} as in the header, "
            "so this column is missing. Add the missing values (an empty field is a "
            "missing value), or fix the line.",
        )
    if fields == header:
        return _error(
            where,
            line,
            None,
            "repeats the header line; expected a row of data (were two files joined?). "
            "Remove the line.",
        )
    return None


def _unclosed_quote(
    where: str, line: int, raw: str, names: list[str]
) -> InvalidParameterError | None:
    """A quote that opens a value of the record ``raw`` and is never closed.

    A quote opens a value only at its start; a quote elsewhere in an unquoted value is
    text (as pyarrow and the csv module read it).
    """
    position, column = 0, 0
    while position < len(raw):
        if raw[position] == '"':
            closed = _QUOTED_REST.match(raw, position + 1)
            if closed is None:
                name: str | int = names[column] if column < len(names) else column + 1
                return _error(
                    where,
                    line + len(_NEWLINE.findall(raw[:position])),
                    name,
                    "a quoted value opens here and is never closed; expected a closing "
                    'quote ("). Close the quote, or double a quote that is part of the '
                    'text ("").',
                )
            position = closed.end()
        separator = _SEPARATOR.search(raw, position)
        if separator is None:
            break
        column += separator.group() == ","
        position = separator.end()
    return None
