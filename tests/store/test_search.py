"""``MetadataStore.search``: filters, sorts, limits and hostile values, on both backends.

Thirty runs with params, metrics and tags are built from a table; every expected answer
is computed from that same table in Python, never written down by hand.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from loopml.errors import FilterSyntaxError, InvalidParameterError
from loopml.store import MetadataStore, RunRecord
from loopml.store.metrics import check_point

INJECTION = "x'; DROP TABLE runs; --"
STATUSES = ("succeeded", "failed", "cancelled", "running")


@dataclass
class Spec:
    pipeline: str
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    label: str = ""


def _specs() -> list[Spec]:
    names = ["x", "y", "adam", INJECTION, "X"]
    tag_values = ["abc", "bcd", "a", "xyz", "50%_off", "zbc"]
    specs = []
    for i in range(30):
        sp = Spec(pipeline=("train", "eval", "tune")[i % 3], status=STATUSES[i % 4])
        if i % 6 != 5:
            sp.params["alpha"] = round(0.05 * i, 2)
        sp.params["name"] = names[i % len(names)]
        sp.params["layers"] = i % 4
        if i % 5 != 0:
            sp.metrics["x"] = float(i % 7)
        sp.metrics["loss"] = 1.0 / (i + 1)
        if i % 4 != 3:
            sp.tags["t"] = tag_values[i % len(tag_values)]
        specs.append(sp)
    specs[7].metrics["x"] = math.nan
    specs[11].metrics["x"] = math.inf
    specs[13].metrics["x"] = -math.inf
    return specs


def _build(store: MetadataStore) -> list[Spec]:
    specs = _specs()
    for sp in specs:
        run, token = store.runs.create(
            pipeline=sp.pipeline, host="h", pid=1, executor="local", lease_s=3600
        )
        sp.label = run.label
        now = time.time()
        points = [check_point(k, v, 0, now) for k, v in sp.metrics.items()]
        store.metrics.write_batch(run.id, points, sp.params, sp.tags)
        if sp.status != "running":
            store.runs.finish(run.id, token, sp.status)
    return specs


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[MetadataStore, list[Spec]]]:
    """The thirty runs, built once per backend: the read-only tests share them."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"search_{uuid.uuid4().hex[:12]}")
    st = MetadataStore(url).open()
    yield st, _build(st)
    st.close()


@pytest.fixture
def store(built: tuple[MetadataStore, list[Spec]]) -> MetadataStore:
    return built[0]


@pytest.fixture
def specs(built: tuple[MetadataStore, list[Spec]]) -> list[Spec]:
    return built[1]


def _metric(sp: Spec, key: str) -> float | None:
    """A metric as filters see it: missing and NaN are both 'no value'."""
    value = sp.metrics.get(key)
    return None if value is None or math.isnan(value) else value


def _num(sp: Spec, key: str) -> float | None:
    value = sp.params.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _labels(records: list[RunRecord]) -> set[str]:
    return {r.label for r in records}


def _expect(specs: list[Spec], pred: Callable[[Spec], bool]) -> set[str]:
    return {sp.label for sp in specs if pred(sp)}


def _lt(a: float | None, b: float) -> bool:
    return a is not None and a < b


def _ge(a: float | None, b: float) -> bool:
    return a is not None and a >= b


FILTERS: list[tuple[str, Callable[[Spec], bool]]] = [
    (
        "metrics.x < 3 and params.alpha >= 0.1",
        lambda sp: _lt(_metric(sp, "x"), 3) and _ge(_num(sp, "alpha"), 0.1),
    ),
    (
        "metrics.x < 1 or metrics.x > 5",
        lambda sp: _lt(_metric(sp, "x"), 1) or (_metric(sp, "x") or 0) > 5,
    ),
    ("not (metrics.x < 3)", lambda sp: not _lt(_metric(sp, "x"), 3)),
    (
        "(metrics.x >= 2 and metrics.x <= 4) or tags.t = 'xyz'",
        lambda sp: 2 <= (_metric(sp, "x") or -1) <= 4 or sp.tags.get("t") == "xyz",
    ),
    ("metrics.x > 100", lambda sp: (_metric(sp, "x") or 0) > 100),
    ("metrics.x < -100", lambda sp: _lt(_metric(sp, "x"), -100)),
    ("metrics.x = null", lambda sp: _metric(sp, "x") is None),
    ("metrics.x != null", lambda sp: _metric(sp, "x") is not None),
    ("metrics.x = 3", lambda sp: _metric(sp, "x") == 3),
    ("metrics.loss <= 0.1", lambda sp: sp.metrics["loss"] <= 0.1),
    ("status = 'failed'", lambda sp: sp.status == "failed"),
    ("status != 'failed'", lambda sp: sp.status != "failed"),
    ("status in ('failed', 'cancelled')", lambda sp: sp.status in ("failed", "cancelled")),
    ("status not in ('failed', 'cancelled')", lambda sp: sp.status not in ("failed", "cancelled")),
    (
        "pipeline = 'train' and number <= 3",
        lambda sp: sp.pipeline == "train" and int(sp.label.split("#")[1]) <= 3,
    ),
    ("name ~ 'tune#*'", lambda sp: sp.pipeline == "tune"),
    ("params.name = 'x'", lambda sp: sp.params["name"] == "x"),
    ("params.name in ('x', 'y')", lambda sp: sp.params["name"] in ("x", "y")),
    ("params.name not in ('x', 'y')", lambda sp: sp.params["name"] not in ("x", "y")),
    ("params.alpha >= 0.1", lambda sp: _ge(_num(sp, "alpha"), 0.1)),
    ("params.alpha = 0.1", lambda sp: _num(sp, "alpha") == 0.1),
    ("params.layers > 2", lambda sp: sp.params["layers"] > 2),
    ("params.layers in (0, 3)", lambda sp: sp.params["layers"] in (0, 3)),
    ("tags.t ~ 'a*'", lambda sp: sp.tags.get("t", "").startswith("a")),
    ("tags.t ~ 'bc'", lambda sp: "bc" in sp.tags.get("t", "")),
    ("tags.t ~ '?bc'", lambda sp: len(sp.tags.get("t", "")) == 3 and sp.tags["t"].endswith("bc")),
    ("tags.t = 'abc'", lambda sp: sp.tags.get("t") == "abc"),
    (
        "not tags.t = 'abc' and not metrics.x = null",
        lambda sp: sp.tags.get("t") != "abc" and _metric(sp, "x") is not None,
    ),
    ("tags.t ~ '%'", lambda sp: "%" in sp.tags.get("t", "")),
    ("tags.t ~ '_'", lambda sp: "_" in sp.tags.get("t", "")),
]


@pytest.mark.parametrize(("text", "pred"), FILTERS, ids=[f[0] for f in FILTERS])
def test_filter_returns_exactly_the_matching_runs(
    store: MetadataStore, specs: list[Spec], text: str, pred: Callable[[Spec], bool]
) -> None:
    expected = _expect(specs, pred)
    got = _labels(store.search(text, limit=1000))
    assert got == expected, f"{text}: missing {expected - got}, extra {got - expected}"


def test_the_test_data_is_varied_enough(specs: list[Spec]) -> None:
    """Every filter above selects some runs but not all, except where the data says otherwise."""
    for text, pred in FILTERS:
        n = len(_expect(specs, pred))
        assert n > 0, text
        assert n < len(specs), text


def test_filter_by_id(store: MetadataStore, specs: list[Spec]) -> None:
    some = store.search("params.name = 'adam'")
    assert some
    target = some[0]
    assert [r.id for r in store.search(f"id = '{target.id}'")] == [target.id]


def test_records_carry_params_metrics_and_tags(store: MetadataStore, specs: list[Spec]) -> None:
    by_label = {sp.label: sp for sp in specs}
    for record in store.search(limit=100):
        sp = by_label[record.label]
        assert record.status == sp.status
        assert set(record.params) == set(sp.params)
        assert record.tags == sp.tags
        assert set(record.metrics) == set(sp.metrics)
        for key, value in sp.metrics.items():
            assert (math.isnan(value) and math.isnan(record.metrics[key])) or record.metrics[
                key
            ] == value


# -- sorting -------------------------------------------------------------------------------


def _nulls_last(values: list[float | None], descending: bool) -> list[float | None]:
    present = sorted((v for v in values if v is not None), reverse=descending)
    return present + [None] * (len(values) - len(present))


@pytest.mark.parametrize("descending", [False, True])
def test_sort_by_metric_with_nulls_last(
    store: MetadataStore, specs: list[Spec], descending: bool
) -> None:
    sort = "-metrics.x" if descending else "metrics.x"
    got = [r.metrics.get("x") for r in store.search(sort=sort, limit=1000)]
    got_norm = [None if v is None or math.isnan(v) else v for v in got]
    assert got_norm == _nulls_last([_metric(sp, "x") for sp in specs], descending)


@pytest.mark.parametrize(
    "sort", ["params.alpha", "params.alpha desc", "-params.alpha", "+params.alpha"]
)
def test_sort_by_numeric_param_with_nulls_last(
    store: MetadataStore, specs: list[Spec], sort: str
) -> None:
    descending = "desc" in sort or sort.startswith("-")
    got = [r.params.get("alpha") for r in store.search(sort=sort, limit=1000)]
    got_num = [None if v is None else float(v) for v in got]
    assert got_num == _nulls_last([_num(sp, "alpha") for sp in specs], descending)


@pytest.mark.parametrize(
    ("sort", "kind", "key"), [("params.name", "params", "name"), ("-tags.t", "tags", "t")]
)
def test_sort_by_text(
    store: MetadataStore, specs: list[Spec], sort: str, kind: str, key: str
) -> None:
    """Text params and tags sort by their text (test servers use the C collation), missing last."""
    descending = sort.startswith("-")
    got = [getattr(r, kind).get(key) for r in store.search(sort=sort, limit=1000)]
    expected = [getattr(sp, kind).get(key) for sp in specs]
    present = sorted((v for v in expected if v is not None), reverse=descending)
    assert got == present + [None] * (len(expected) - len(present))


def test_sort_by_attributes(store: MetadataStore, specs: list[Spec]) -> None:
    records = store.search(sort="pipeline, -number", limit=1000)
    keys = [(r.pipeline, -r.number) for r in records]
    assert keys == sorted(keys)
    assert len(records) == len(specs)
    newest_first = store.search(limit=1000)
    started = [r.started_at for r in newest_first]
    assert started == sorted(started, reverse=True)


def test_sort_with_filter_and_limit(store: MetadataStore, specs: list[Spec]) -> None:
    got = [r.metrics["loss"] for r in store.search("status = 'succeeded'", "metrics.loss", limit=3)]
    expected = sorted(sp.metrics["loss"] for sp in specs if sp.status == "succeeded")[:3]
    assert got == expected


def test_sort_by_a_missing_key_keeps_every_run(store: MetadataStore, specs: list[Spec]) -> None:
    assert len(store.search(sort="-metrics.nope, tags.nope", limit=1000)) == len(specs)


# -- limit and offset -------------------------------------------------------------------------


def test_pages_cover_every_run_once(store: MetadataStore, specs: list[Spec]) -> None:
    full = [r.id for r in store.search(sort="id", limit=1000)]
    pages: list[str] = []
    for offset in range(0, 35, 7):
        pages += [r.id for r in store.search(sort="id", limit=7, offset=offset)]
    assert pages == full
    assert len(full) == len(specs) == len(set(full))
    assert store.search(sort="id", limit=5, offset=1000) == []
    assert len(store.search(limit=10_000)) == len(specs)


@pytest.mark.parametrize(
    ("limit", "offset"), [(10**7, 0), (0, 0), (-1, 0), (10_001, 0), (5, -1), ("10", 0), (2.5, 0)]
)
def test_limit_and_offset_out_of_range(store: MetadataStore, limit: Any, offset: Any) -> None:
    with pytest.raises(InvalidParameterError) as info:
        store.search(limit=limit, offset=offset)
    assert ("limit" if offset == 0 else "offset") in str(info.value)


def test_default_limit_is_100(store_url: str) -> None:
    fresh = MetadataStore(store_url).open()
    try:
        assert fresh.search() == []
        for _ in range(101):
            fresh.runs.create(pipeline="big", host="h", pid=1, executor="local", lease_s=60)
        assert len(fresh.search()) == 100
        assert len(fresh.search(limit=101)) == 101
        assert [r.number for r in fresh.search(limit=2)] == [101, 100]  # newest first
    finally:
        fresh.close()


# -- hostile values ----------------------------------------------------------------------------


def _row_counts(store: MetadataStore) -> dict[str, int]:
    tables = ("runs", "params", "metrics", "latest_metrics", "tags", "alembic_version")
    return store.db.read(
        lambda tx: {t: int(tx.scalar(f"SELECT COUNT(*) FROM {t}") or 0) for t in tables}
    )


@pytest.mark.parametrize(
    "text",
    [
        f'params.name = "{INJECTION}"',
        "params.name = 'x\\'; DROP TABLE runs; --'",
        f"tags.t = \"{INJECTION}\" or status = 'failed'",
        f'name = "{INJECTION}"',
        f'params.name in ("{INJECTION}", "1); DELETE FROM params; --")',
        f'tags.t ~ "{INJECTION}*"',
        'params."x\'; DROP TABLE runs; --" = 1',
    ],
)
def test_injection_strings_are_just_values(
    store: MetadataStore, specs: list[Spec], text: str
) -> None:
    before = _row_counts(store)
    store.search(text, limit=1000)
    assert _row_counts(store) == before


def test_an_injection_value_finds_its_run(store: MetadataStore, specs: list[Spec]) -> None:
    expected = _expect(specs, lambda sp: sp.params["name"] == INJECTION)
    assert expected
    assert _labels(store.search(f'params.name = "{INJECTION}"', limit=1000)) == expected


@pytest.mark.parametrize(
    "sort", ['params."x\'; DROP TABLE runs; --"', "metrics.`a; DELETE FROM metrics`"]
)
def test_injection_strings_in_sort_keys(store: MetadataStore, specs: list[Spec], sort: str) -> None:
    before = _row_counts(store)
    try:
        got = store.search(sort=sort, limit=1000)
    except FilterSyntaxError:
        got = None
    assert got is None or len(got) == len(specs)
    assert _row_counts(store) == before


@pytest.mark.parametrize(
    "text",
    [
        "metrics.x <",
        "params.alpha >= 'a' and",
        "status = 'nope'",
        "drop table runs",
        "metrics.x ~ 'a'",
    ],
)
def test_malformed_filters_raise_filter_syntax_errors(store: MetadataStore, text: str) -> None:
    with pytest.raises(FilterSyntaxError):
        store.search(text)


# -- consistency across backends ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pred"),
    [
        pytest.param("params.alpha = null", lambda sp: "alpha" not in sp.params, id="params=null"),
        pytest.param("params.alpha != null", lambda sp: "alpha" in sp.params, id="params!=null"),
        pytest.param("tags.t = null", lambda sp: "t" not in sp.tags, id="tags=null"),
        pytest.param("tags.t != null", lambda sp: "t" in sp.tags, id="tags!=null"),
    ],
)
def test_null_means_missing_for_params_and_tags_as_for_metrics(
    store: MetadataStore, specs: list[Spec], text: str, pred: Callable[[Spec], bool]
) -> None:
    assert _labels(store.search(text, limit=1000)) == _expect(specs, pred)


def test_tilde_ignores_case_on_every_backend_and_equality_does_not(store_url: str) -> None:
    """The same filter selects the same runs on SQLite and PostgreSQL: ``~`` ignores case."""
    fresh = MetadataStore(store_url).open()
    try:
        for value in ("adam", "Adam", "ADAM", "madam", "bob"):
            run, _ = fresh.runs.create(pipeline="p", host="h", pid=1, executor="local", lease_s=60)
            fresh.metrics.write_batch(run.id, tags={"opt": value})

        def found(text: str) -> list[str]:
            return sorted(r.tags["opt"] for r in fresh.search(text))

        assert found("tags.opt ~ 'adam'") == ["ADAM", "Adam", "adam", "madam"]
        assert found("tags.opt ~ 'A*'") == ["ADAM", "Adam", "adam"]
        assert found("tags.opt ~ 'a?A?'") == ["ADAM", "Adam", "adam"]
        assert found("tags.opt = 'adam'") == ["adam"]
        assert found("tags.opt in ('Adam', 'bob')") == ["Adam", "bob"]
    finally:
        fresh.close()
