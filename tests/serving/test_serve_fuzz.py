"""R16 (JSON fuzz of ``/predict``) and the HTTP half of R17 (the malformed-CSV corpus).

R16, per served model (the churn classifier and the diabetes regressor): hypothesis draws
rows from the model's input schema, a body form (records, ``{"records"}``, columns/data,
``{"inputs"}``, MLflow's two forms) and one mutation: none, a wrong type, a missing or an
extra column, null, the NaN/Infinity literals, ``1e309``, a 40-digit integer, a value or a
whole body nested deep, an empty body, 10,000 columns, bytes that are not UTF-8, a
duplicated key, a wrong Content-Type. One uvicorn server per model answers all of them.

Pass: no 5xx; every refusal is 400/413/415/422 with ``detail`` entries of ``loc`` and
``msg``; a refusal caused by a column names that column; no stack trace; no refusal lists
the columns it was not about (the "full schema") or shows the values of the rows that were
fine; valid payloads get 200 and exactly the model's answers. The report line is printed.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loopml
from loopml.registry.schema import ModelSchema
from loopml.serving.app import create_app
from serve_server import register_classifier, register_regressor, running

sys.path.insert(0, str(Path(__file__).parents[1] / "reliability"))
from csv_corpus import HEADER, cases, good_file  # noqa: E402

EXAMPLES = 1_000
REFUSED = {400, 413, 415, 422}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as c:
        yield c


# -- payloads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (``NaN``, ``1e309``, a 40-digit integer, deep nesting)."""

    text: str


# 10,000 extra columns, written once: ``("", WIDE)`` in a record stands for all of them.
WIDE = Raw("")
_WIDE_TEXT = ",".join(f'"c{i}":{i}' for i in range(10_000))
_WIDE_NAMES = ",".join(f'"c{i}"' for i in range(10_000))
_WIDE_VALUES = ",".join(str(i) for i in range(10_000))
_WIDE_NULLS = ",".join(["null"] * 10_000)


def dump(value: Any) -> str:
    """JSON text; a record is a list of (key, value) pairs, so keys may repeat."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        items = [_WIDE_TEXT if v is WIDE else f"{json.dumps(k)}:{dump(v)}" for k, v in value]
        return "{" + ",".join(items) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


class Pairs(list):  # type: ignore[type-arg]
    """A JSON object as (key, value) pairs."""


@dataclass
class Payload:
    body: bytes
    content_type: str | None
    mutation: str
    column: str | None  # the column the mutation is about
    rows: list[dict[str, Any]]  # the rows as drawn (before the mutation)
    bad_row: int | None = None
    omitted: list[str] = field(default_factory=list)


# Awkward characters, drawn from a short list: hypothesis' full-Unicode text costs seconds
# to set up and milliseconds a draw, and the server treats every code point alike.
TEXT = st.text(alphabet=st.sampled_from(list("aZ0 é€🙂'\"\\\n\t\x00<>{}[],;")), max_size=12)


AWKWARD = ("", "a", "é€🙂", "'; DROP TABLE x; --", "=1+1", "<b>x</b>", "\x00", " " * 40)


def _rows(schema: ModelSchema, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` valid rows for ``schema`` from a numpy generator seeded by hypothesis (drawing
    every value through hypothesis costs ~20 ms an example, more than the request)."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for spec in schema.inputs:
        if spec.categories is not None:
            values = [spec.categories[i] for i in rng.integers(0, len(spec.categories), n)]
        elif spec.kind == "integer":
            values = rng.integers(-1_000_000, 1_000_000, n).tolist()
        elif spec.kind == "float":  # JSON ints, small and large floats, -0.0
            pool = [
                float(rng.normal(0, 1e3)),
                float(rng.integers(-9, 9)),
                -0.0,
                1e-300 * rng.normal(),
            ]
            values = [
                float(pool[i]) if i < 4 else int(rng.integers(-1000, 1000))
                for i in rng.integers(0, 6, n)
            ]
        elif spec.kind == "boolean":
            values = rng.integers(0, 2, n).astype(bool).tolist()
        else:
            values = [AWKWARD[i] for i in rng.integers(0, len(AWKWARD), n)]
        for row, value in zip(rows, values, strict=True):
            row[spec.name] = value
    return rows


def _wrong(spec: Any) -> st.SearchStrategy[Any]:
    others = st.one_of(
        st.lists(st.integers(), max_size=3),
        st.dictionaries(TEXT, st.integers(), max_size=2),
        st.booleans(),
    )
    if spec.kind in ("string", "category"):
        return st.one_of(others, st.integers(), st.floats(allow_nan=False, allow_infinity=False))
    return st.one_of(others, TEXT.filter(bool))


MUTATIONS = (
    "none",
    "none",
    "none",
    "wrong_type",
    "missing",
    "extra",
    "null",
    "nan",
    "infinity",
    "1e309",
    "40_digits",
    "deep_value",
    "deep_body",
    "empty",
    "wide",
    "not_utf8",
    "duplicate_key",
    "content_type",
)
FORMS = ("list", "records", "columns", "inputs", "dataframe_records", "dataframe_split")


def payloads(schema: ModelSchema) -> st.SearchStrategy[Payload]:
    """Payloads for ``schema``; the strategies are built once (building one costs more than
    drawing from it)."""
    rows = st.builds(_rows, st.just(schema), st.integers(1, 5), st.integers(0, 2**32 - 1))
    wrong = {s.name: _wrong(s) for s in schema.inputs}
    extra = TEXT.filter(lambda t: t not in schema.names)
    return _payloads(schema, rows, wrong, extra)


@st.composite
def _payloads(
    draw: st.DrawFn,
    schema: ModelSchema,
    rows_of: st.SearchStrategy[list[dict[str, Any]]],
    wrong_of: dict[str, st.SearchStrategy[Any]],
    extra_of: st.SearchStrategy[str],
) -> Payload:
    rows = draw(rows_of)
    n = len(rows)
    mutation = draw(st.sampled_from(MUTATIONS))
    form = draw(st.sampled_from(FORMS))
    spec = draw(st.sampled_from(list(schema.inputs)))
    row = draw(st.integers(0, n - 1))
    records: list[Pairs] = [Pairs(r.items()) for r in rows]
    p = Payload(b"", "application/json", mutation, None, rows)

    def put(value: Any) -> None:
        p.column, p.bad_row = spec.name, row
        records[row] = Pairs((k, value if k == spec.name else v) for k, v in records[row])

    if mutation == "wrong_type":
        put(draw(wrong_of[spec.name]))
    elif mutation == "missing":
        p.column, p.omitted = spec.name, [spec.name]
        records = [Pairs((k, v) for k, v in r if k != spec.name) for r in records]
    elif mutation == "extra":
        name = draw(extra_of)
        records = [Pairs([*r, (name, draw(st.integers() | TEXT))]) for r in records]
    elif mutation == "null":
        put(None)
    elif mutation == "nan":
        put(Raw("NaN"))
    elif mutation == "infinity":
        put(Raw(draw(st.sampled_from(["Infinity", "-Infinity"]))))
    elif mutation == "1e309":
        put(Raw(draw(st.sampled_from(["1e309", "-1e309"]))))
    elif mutation == "40_digits":
        put(Raw(draw(st.sampled_from(["-", ""])) + "1" + "0" * 39))
    elif mutation == "deep_value":
        put(Raw("[" * 900 + "]" * 900))
    elif mutation == "wide":
        records[row] = Pairs([*records[row], ("", WIDE)])
    elif mutation == "duplicate_key":
        wrong = draw(wrong_of[spec.name])
        first, last = draw(st.sampled_from([(wrong, None), (None, wrong)]))
        pairs = list(records[row])
        i = [k for k, _ in pairs].index(spec.name)
        good = pairs[i][1]
        pairs[i : i + 1] = [(spec.name, good if first is None else first)]
        pairs.append((spec.name, good if last is None else last))
        records[row] = Pairs(pairs)
        p.column, p.bad_row = spec.name, row
        form = draw(st.sampled_from(["list", "records", "dataframe_records"]))

    if mutation == "deep_body":
        p.body = b"[" * 10_000 + b"]" * 10_000
    elif mutation == "empty":
        p.body = b""
    else:
        p.body = _render(form, records).encode()
    if mutation == "not_utf8":
        cut = draw(st.integers(0, len(p.body)))
        p.body = p.body[:cut] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]))
        p.body += p.body[cut:]
    if mutation == "content_type":
        p.content_type = draw(
            st.sampled_from(
                [None, "text/plain", "application/xml", "application/x-www-form-urlencoded"]
            )
        )
    return p


def _render(form: str, records: list[Pairs]) -> str:
    if form in ("list", "records", "dataframe_records"):
        inner = dump(records)
        return inner if form == "list" else f'{{"{form}":{inner}}}'
    wide = [any(v is WIDE for _, v in r) for r in records]
    cells = [{k: v for k, v in r if v is not WIDE} for r in records]
    columns = list(dict.fromkeys(k for r in cells for k in r))
    if form == "inputs":
        text = dump({"inputs": {c: [r.get(c) for r in cells] for c in columns}})
        if any(wide):  # the 10,000 columns spliced in as text (dumping them costs seconds)
            lists = [",".join(str(i) if w else "null" for w in wide) for i in range(10_000)]
            text = text[:-2] + "," + ",".join(f'"c{i}":[{v}]' for i, v in enumerate(lists))
            text += "}}"
        return text
    names = dump(columns)
    data = [dump([r.get(c) for c in columns]) for r in cells]
    if any(wide):
        names = names[:-1] + "," + _WIDE_NAMES + "]"
        data = [
            d[:-1] + "," + (_WIDE_VALUES if w else _WIDE_NULLS) + "]"
            for d, w in zip(data, wide, strict=True)
        ]
    split = f'{{"columns":{names},"data":[{",".join(data)}]}}'
    return split if form == "columns" else f'{{"dataframe_split":{split}}}'


# -- the oracle ----------------------------------------------------------------------------


def _model_answers(model: Any, schema: ModelSchema, rows: list[dict[str, Any]]) -> Any:
    frame = pd.DataFrame(rows, columns=schema.names)
    for s in schema.inputs:
        if s.kind == "float":
            frame[s.name] = frame[s.name].astype("float64")
    if hasattr(model, "predict_proba"):
        return model.predict(frame), model.predict_proba(frame)
    return model.predict(frame), None


def _names_field(detail: list[dict[str, Any]], column: str) -> bool:
    return any(column in d["loc"] or repr(column) in d["msg"] for d in detail)


def _mentions(text: str, column: str) -> bool:
    return json.dumps(column) in text or repr(column) in text


@dataclass
class Tally:
    sent: int = 0
    fivexx: int = 0
    refused: int = 0
    named: int = 0
    latencies: list[float] = field(default_factory=list)
    by_mutation: dict[str, dict[int, int]] = field(default_factory=dict)

    def line(self, model: str) -> str:
        p99 = float(np.percentile(self.latencies, 99)) * 1000 if self.latencies else 0.0
        share = 100.0 * self.named / self.refused if self.refused else 100.0
        return (
            f"R16 {model}: {self.sent} payloads, {self.fivexx} 5xx, {self.refused} refused, "
            f"{share:.1f} % of refusals name the field, p99 refusal latency {p99:.1f} ms"
        )


def _fuzz(http: httpx.Client, url: str, schema: ModelSchema, model: Any, label: str) -> None:
    tally = Tally()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(payloads(schema))
    def one(p: Payload) -> None:
        headers = {} if p.content_type is None else {"content-type": p.content_type}
        started = time.perf_counter()
        r = http.post(f"{url}/predict", content=p.body, headers=headers)
        took = time.perf_counter() - started
        tally.sent += 1
        counts = tally.by_mutation.setdefault(p.mutation, {})
        counts[r.status_code] = counts.get(r.status_code, 0) + 1
        if r.status_code >= 500:
            tally.fivexx += 1
        assert r.status_code < 500, (p.mutation, p.body[:300], r.text[:300])
        assert "Traceback" not in r.text
        if p.mutation in ("none", "extra"):
            assert r.status_code == 200, (p.mutation, p.body[:300], r.text[:500])
        if r.status_code == 200:
            if p.mutation == "none":
                want, proba = _model_answers(model, schema, p.rows)
                out = r.json()
                assert len(out["prediction_ids"]) == len(p.rows)
                if proba is None:
                    np.testing.assert_allclose(out["predictions"], want, rtol=0, atol=1e-9)
                else:
                    assert out["predictions"] == want.tolist()
                    np.testing.assert_allclose(out["probabilities"], proba, rtol=0, atol=1e-9)
            return
        assert r.status_code in REFUSED, (p.mutation, r.status_code, r.text[:300])
        tally.refused += 1
        tally.latencies.append(took)
        detail = r.json()["detail"]
        assert detail and all(d["loc"] and d["msg"] for d in detail), r.text[:500]
        named = _refusal_names_it(p, r.status_code, detail)
        tally.named += named
        assert named, (p.mutation, p.column, p.body[:200], r.text[:500])
        # Only the columns the request got wrong are named, never the whole schema ...
        others = [n for n in schema.names if n != p.column]
        assert not [n for n in others if _mentions(r.text, n)], (p.mutation, r.text[:500])
        # ... and no value of a row that was fine comes back.
        for i, row in enumerate(p.rows):
            if i == p.bad_row:
                continue
            for s in schema.inputs:
                v = row[s.name]
                if isinstance(v, float) and len(repr(v)) >= 9:
                    assert repr(v) not in r.text, (p.mutation, v, r.text[:500])

    one()
    print(tally.line(label))
    print(f"  status codes by mutation: {tally.by_mutation}")
    assert tally.sent >= EXAMPLES and tally.fivexx == 0 and tally.named == tally.refused
    for mutation in MUTATIONS:  # every mutation was tried, and each defect was refused
        assert mutation in tally.by_mutation, mutation
    for mutation in ("wrong_type", "missing", "null", "nan", "deep_value", "deep_body", "empty"):
        assert 200 not in tally.by_mutation[mutation], (mutation, tally.by_mutation[mutation])


def _refusal_names_it(p: Payload, status: int, detail: list[dict[str, Any]]) -> bool:
    """Whether a refusal points at what was wrong: the column, or the part of the request."""
    if p.mutation == "content_type":
        return status == 415 and detail[0]["loc"] == ["header", "content-type"]
    if p.mutation in ("deep_body", "empty", "not_utf8"):
        return status == 400 and detail[0]["loc"] == ["body"]
    if p.mutation == "wide":
        return any("columns" in d["msg"] for d in detail)
    if p.column is None:
        return False
    return _names_field(detail, p.column)


def test_r16_classifier(http: httpx.Client) -> None:
    version, model = register_classifier()
    schema = ModelSchema.from_dict(version.input_schema)
    with running(create_app("churn", runtime="native", log_sample=0)) as url:
        _fuzz(http, url, schema, model, "churn (classifier, 3 columns)")


def test_r16_regressor(http: httpx.Client) -> None:
    version, model = register_regressor()
    schema = ModelSchema.from_dict(version.input_schema)
    with running(create_app("price", runtime="native", log_sample=0)) as url:
        _fuzz(http, url, schema, model, "price (regressor, 10 columns)")


# -- R17 over HTTP -------------------------------------------------------------------------


def _corpus_model() -> Any:
    import io

    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X = pd.read_csv(io.BytesIO(good_file(60)))
    assert tuple(X.columns) == HEADER
    model = make_pipeline(
        ColumnTransformer(
            [
                ("num", "passthrough", ["id", "score"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["name"]),
            ]
        ),
        LogisticRegression(max_iter=500),
    ).fit(X, X["score"] > 2)
    loopml.register("corpus", model, X=X)
    return model


def test_r17_csv_corpus_over_http(http: httpx.Client) -> None:
    _corpus_model()
    corpus = cases()
    outcomes: dict[str, int] = {}
    failures = []
    with running(create_app("corpus", runtime="native", log_sample=0)) as url:
        for case in corpus:
            r = http.post(f"{url}/predict", content=case.data, headers={"content-type": "text/csv"})
            outcomes[str(r.status_code)] = outcomes.get(str(r.status_code), 0) + 1
            why = _judge(case, r)
            if why:
                failures.append(f"{case.id}: {why}")
    print(f"R17 HTTP: {len(corpus)} CSV bodies, outcomes {outcomes}")
    assert not failures, "\n".join(failures[:20])


def _judge(case: Any, r: httpx.Response) -> str:
    if r.status_code >= 500 or "Traceback" in r.text:
        return f"{r.status_code} {r.text[:200]}"
    if case.accepted:
        if r.status_code == 200:
            return ""
        if r.status_code != 422:
            return f"accepted case got {r.status_code}: {r.text[:200]}"
        detail = r.json()["detail"]
        named = [c for c in HEADER for d in detail if c in d["loc"] or repr(c) in d["msg"]]
        if not named:
            return f"422 that names no column: {r.text[:200]}"
        return ""
    if r.status_code != 400:
        return f"refused case got {r.status_code}: {r.text[:200]}"
    msg = " ".join(d["msg"] for d in r.json()["detail"])
    missing = case.problems_with(msg)
    return f"message does not name {missing}: {msg[:200]}" if missing else ""
