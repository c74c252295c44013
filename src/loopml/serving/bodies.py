"""Request bodies of ``/predict`` turned into rows, and every way one can be refused.

Accepted bodies (the ``Content-Type`` decides; nothing is sniffed):

- ``application/json``: a list of records ``[{"age": 41, "plan": "pro"}, ...]``, or an
  object ``{"records": [...]}``, or column-wise ``{"columns": [...], "data": [[...], ...]}``,
  or ``{"inputs": {"age": [41, 35], ...}}``; MLflow's ``{"dataframe_records": [...]}`` and
  ``{"dataframe_split": {"columns": ..., "data": ...}}`` are read too, so existing clients
  move over unchanged.
- ``text/csv``: a header line, then rows (the same reader, and the same line and column in
  its errors, as ``loopml data`` uses for files).
- ``application/vnd.apache.parquet`` (or ``application/x-parquet``): a Parquet file.

Nothing a client sends is unpickled or evaluated: pickle, ``application/octet-stream`` and
form uploads are refused with 415. Every refusal is a :class:`RequestError` carrying the
status and details in FastAPI's shape (``loc``, ``msg``, ``type``), never a stack trace.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import pandas as pd

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")
ACCEPTED = "application/json, text/csv or application/vnd.apache.parquet"
_SHAPES = (
    'a list of records [{"col": value, ...}], {"records": [...]}, '
    '{"columns": [...], "data": [[...]]} or {"inputs": {"col": [...]}}'
)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; over a limit is 413 (size) or 422 (columns).

    Args:
        max_body_bytes: bytes of body, counted as they stream in (not from Content-Length).
        max_rows: rows per request.
        max_columns: columns per request (the model's plus extras that are dropped).
    """

    max_body_bytes: int = 16 * 1024 * 1024
    max_rows: int = 100_000
    max_columns: int = 2_000

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_rows", "max_columns"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidParameterError(
                    f"serve limit {name}: got {value!r}; expected a positive whole number."
                )


class RequestError(Exception):
    """A request refused: ``status`` (4xx) and ``detail``, a list of ``{loc, msg, type}``."""

    def __init__(self, status: int, detail: list[dict[str, Any]]) -> None:
        super().__init__(detail[0]["msg"] if detail else str(status))
        self.status = status
        self.detail = detail

    @classmethod
    def one(cls, status: int, loc: list[Any], msg: str, type: str) -> RequestError:
        return cls(status, [{"loc": loc, "msg": msg, "type": type}])


@dataclass
class Parsed:
    """A decoded body: JSON ``records`` or ``columns`` (lists of values), or a ``frame``."""

    n: int
    records: list[dict[str, Any]] | None = None
    columns: dict[str, list[Any]] | None = None
    frame: pd.DataFrame | None = None


def media_type(content_type: str | None) -> str:
    """``application/json`` from ``application/json; charset=utf-8``; 415 for anything else."""
    media = (content_type or "").partition(";")[0].strip().lower()
    if media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json")):
        return "json"
    if media in CSV_TYPES:
        return "csv"
    if media in PARQUET_TYPES:
        return "parquet"
    why = ""
    if "pickle" in media or media in ("application/octet-stream", "multipart/form-data"):
        why = " Model inputs are never unpickled or run: send the rows as data."
    raise RequestError.one(
        415,
        ["header", "content-type"],
        f"Content-Type {short(content_type or '(none)', 60)!s} is not accepted; send {ACCEPTED}."
        + why,
        "unsupported_media_type",
    )


def parse(kind: str, body: bytes, limits: Limits) -> Parsed:
    """Decode a body whose media ``kind`` is ``json``, ``csv`` or ``parquet``."""
    if not body:
        raise RequestError.one(400, ["body"], f"The body is empty; send {_SHAPES}.", "empty_body")
    if kind == "json":
        parsed = _parse_json(body, limits)
    elif kind == "csv":
        parsed = _parse_file(body, "csv", limits)
    else:
        parsed = _parse_file(body, "parquet", limits)
    if parsed.n > limits.max_rows:
        raise too_many_rows(["body"], parsed.n, limits)
    return parsed


def loads_json(body: bytes) -> Any:
    """The JSON document in ``body``; 400 when it is not JSON.

    orjson refuses the ``NaN``/``Infinity`` literals and numbers beyond a double (``1e309``),
    which Python's own ``json.dumps`` writes; those are read again with the standard
    library so the schema check can name the column that holds them (a missing value, or
    a number that is not finite) instead of answering "not JSON".
    """
    import orjson

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        first = exc
    import json

    try:
        return json.loads(body, parse_int=_int)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise RequestError.one(
            400, ["body"], f"The body is not valid JSON: {short(str(first), 160)}.", "json_invalid"
        ) from None


def _int(text: str) -> int | float:
    # As orjson does: an integer beyond 64 bits becomes a float (and never a 4,300-digit int).
    return int(text) if len(text) <= 20 else float(text)


def _parse_json(body: bytes, limits: Limits) -> Parsed:
    doc = loads_json(body)
    if isinstance(doc, dict):
        doc = _unwrap(doc)
    if isinstance(doc, list):
        return _records(doc, ["body"], limits)
    if isinstance(doc, _Columns):
        return _columns(doc, limits)
    raise RequestError.one(422, ["body"], f"Got {_kind(doc)}; expected {_SHAPES}.", "body_shape")


class _Columns:
    """``{"columns": [...], "data": [[...]]}`` or ``{"inputs": {...}}``, before checking."""

    def __init__(self, loc: list[Any], columns: Any, data: Any, by_column: bool) -> None:
        self.loc, self.columns, self.data, self.by_column = loc, columns, data, by_column


def _unwrap(doc: dict[str, Any]) -> Any:
    keys = set(doc)
    for key in ("records", "dataframe_records"):
        if keys == {key}:
            return doc[key]
    inner, loc = doc, ["body"]
    if keys == {"dataframe_split"} and isinstance(doc["dataframe_split"], dict):
        inner, loc = doc["dataframe_split"], ["body", "dataframe_split"]
    if {"columns", "data"} <= set(inner) <= {"columns", "data", "index"}:
        return _Columns(loc, inner["columns"], inner["data"], by_column=False)
    if keys == {"inputs"} and isinstance(doc["inputs"], dict):
        inputs = doc["inputs"]
        return _Columns(["body", "inputs"], list(inputs), list(inputs.values()), by_column=True)
    return doc


def _records(doc: list[Any], loc: list[Any], limits: Limits) -> Parsed:
    if len(doc) > limits.max_rows:
        raise too_many_rows(loc, len(doc), limits)
    for i, record in enumerate(doc):
        if type(record) is not dict:
            raise RequestError.one(
                422,
                [*loc, i],
                f"Record {i} is {_kind(record)}; expected an object of column: value.",
                "record_type",
            )
        if len(record) > limits.max_columns:
            raise _too_many_columns([*loc, i], len(record), limits)
    return Parsed(len(doc), records=doc)


def _columns(doc: _Columns, limits: Limits) -> Parsed:
    names, data = doc.columns, doc.data
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RequestError.one(
            422, [*doc.loc, "columns"], "Expected a list of column names (text).", "columns_type"
        )
    if len(names) > limits.max_columns:
        raise _too_many_columns([*doc.loc, "columns"], len(names), limits)
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise RequestError.one(
            422,
            [*doc.loc, "columns"],
            f"Columns {short(dupes, 120)} appear more than once; send each column once.",
            "duplicate_columns",
        )
    if not isinstance(data, list):
        raise RequestError.one(
            422, [*doc.loc, "data"], f"Got {_kind(data)}; expected a list.", "data_type"
        )
    if doc.by_column:  # {"inputs": {"col": [values]}}
        lengths = set()
        for name, values in zip(names, data, strict=True):
            if not isinstance(values, list):
                raise RequestError.one(
                    422,
                    [*doc.loc, name],
                    f"Column {short(name, 60)} is {_kind(values)}; expected a list of values.",
                    "column_type",
                )
            lengths.add(len(values))
        if len(lengths) > 1:
            raise RequestError.one(
                422,
                list(doc.loc),
                f"The columns have different lengths {sorted(lengths)[:5]}; expected one "
                "value per row in every column.",
                "ragged_columns",
            )
        n = lengths.pop() if lengths else 0
        if n > limits.max_rows:
            raise too_many_rows(list(doc.loc), n, limits)
        return Parsed(n, columns=dict(zip(names, data, strict=True)))
    if len(data) > limits.max_rows:
        raise too_many_rows([*doc.loc, "data"], len(data), limits)
    width = len(names)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else _kind(row)
            raise RequestError.one(
                422,
                [*doc.loc, "data", i],
                f"Row {i} has {got}; expected a list of {width} values, one per column.",
                "row_shape",
            )
    columns = {name: [row[j] for row in data] for j, name in enumerate(names)}
    return Parsed(len(data), columns=columns)


def _parse_file(body: bytes, fmt: str, limits: Limits) -> Parsed:
    """CSV or Parquet through the data layer's one reader (spooled to a temporary file)."""
    from pathlib import Path

    import pyarrow as pa

    from loopml.data.tables import read_file

    label = "The CSV body" if fmt == "csv" else "The Parquet body"
    handle, name = tempfile.mkstemp(prefix="loopml-body-", suffix=f".{fmt}")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(body)
        if fmt == "parquet":
            _check_parquet(Path(name), limits)
        try:
            table = read_file(Path(name), fmt=fmt, label=label)
        except InvalidParameterError as exc:
            message = str(exc).replace(f"Parquet file {name!r}", label)
            raise RequestError.one(400, ["body"], message, f"{fmt}_invalid") from None
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise RequestError.one(
                400, ["body"], f"{label} cannot be read: {short(str(exc), 160)}.", f"{fmt}_invalid"
            ) from None
    finally:
        os.unlink(name)
    if table.num_columns > limits.max_columns:
        raise _too_many_columns(["body"], table.num_columns, limits)
    try:
        frame = table.to_pandas()
    except (pa.ArrowException, ValueError) as exc:
        raise RequestError.one(
            400, ["body"], f"{label} cannot be read: {short(str(exc), 160)}.", f"{fmt}_invalid"
        ) from None
    return Parsed(len(frame), frame=frame)


def _check_parquet(path: Any, limits: Limits) -> None:
    """Refuse from the footer a file that would unpack beyond the limits (a Parquet bomb)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except (pa.ArrowException, OSError) as exc:
        raise RequestError.one(
            400,
            ["body"],
            f"The Parquet body cannot be read: {short(str(exc), 160)}; expected a complete "
            "Parquet file.",
            "parquet_invalid",
        ) from None
    if meta.num_rows > limits.max_rows:
        raise too_many_rows(["body"], meta.num_rows, limits)
    if meta.num_columns > limits.max_columns:
        raise _too_many_columns(["body"], meta.num_columns, limits)
    unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if unpacked > 8 * limits.max_body_bytes:
        raise RequestError.one(
            413,
            ["body"],
            f"The Parquet body unpacks to {unpacked:,} bytes, over 8 × the body limit of "
            f"{limits.max_body_bytes:,}; send fewer rows per request.",
            "too_large",
        )


def too_many_rows(loc: list[Any], n: int, limits: Limits) -> RequestError:
    return RequestError.one(
        413,
        loc,
        f"{n:,} rows is over this server's limit of {limits.max_rows:,} per request; split "
        "the batch, or score files with `loopml predict`.",
        "too_many_rows",
    )


def _too_many_columns(loc: list[Any], n: int, limits: Limits) -> RequestError:
    return RequestError.one(
        422,
        loc,
        f"{n:,} columns is over this server's limit of {limits.max_columns:,}; send the "
        "model's input columns (GET /schema lists them).",
        "too_many_columns",
    )


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "a boolean", type(None): "null"}
    for t, name in names.items():
        if type(value) is t:
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__


def short(value: Any, limit: int = 80) -> str:
    """``value`` as text of at most ``limit`` characters (long values are cut with …)."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    return text if len(text) <= limit else text[: limit - 1] + "…"


SERVE_BODY_FIX = "send fewer rows per request (`loopml serve --max-body-mb` sets the limit)"


def too_large(size: int, cap: int, fix: str = SERVE_BODY_FIX) -> RequestError:
    return RequestError.one(
        413,
        ["body"],
        f"The body is over this server's limit of {cap:,} bytes (at least {size:,} came); {fix}.",
        "too_large",
    )


def feedback_items(body: bytes, limits: Limits) -> list[tuple[str, str, float]]:
    """A ``/feedback`` body as ``(prediction_id, label_json, at)`` items; 4xx naming the
    item and the field otherwise."""
    import json

    from loopml.store.predictions import PREDICTION_ID

    doc = loads_json(body)
    if isinstance(doc, dict) and set(doc) == {"feedback"}:
        doc, loc = doc["feedback"], ["body", "feedback"]
    else:
        loc = ["body"]
    items = doc if isinstance(doc, list) else [doc]
    if isinstance(doc, list):
        loc = [*loc]
    if len(items) > limits.max_rows:
        raise too_many_rows(loc, len(items), limits)
    now = time.time()
    out = []
    for i, item in enumerate(items):
        where = [*loc, i] if isinstance(doc, list) else loc
        if not isinstance(item, dict) or set(item) != {"prediction_id", "label"}:
            raise RequestError.one(
                422,
                where,
                'Expected {"prediction_id": "<id from /predict>", "label": <the true value>} '
                '(or a list of them, or {"feedback": [...]}).',
                "feedback_shape",
            )
        pid, label = item["prediction_id"], item["label"]
        if not isinstance(pid, str) or not PREDICTION_ID.fullmatch(pid):
            raise RequestError.one(
                422,
                [*where, "prediction_id"],
                f"prediction_id {short(pid, 80)}: expected an id returned by /predict.",
                "prediction_id",
            )
        if not isinstance(label, str | int | float | bool) or (
            isinstance(label, float) and not math.isfinite(label)
        ):
            raise RequestError.one(
                422,
                [*where, "label"],
                f"label {short(label, 80)}: expected a (finite) number, text or true/false.",
                "label",
            )
        if isinstance(label, str) and len(label) > 1000:
            raise RequestError.one(
                422, [*where, "label"], "label: at most 1,000 characters of text.", "label"
            )
        out.append((pid, json.dumps(label), now))
    return out
