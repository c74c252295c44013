"""Metric points, params and tags in the store, on both backends.

The semantics table (duplicates, NaN, step range, timestamps) with counts lives in
``tests/reliability/test_r15_metric_semantics.py``; this module checks the store API.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from loopml.errors import InvalidParameterError
from loopml.store import MetadataStore, MetricPoint
from loopml.store.metrics import check_point, param_value


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    st = MetadataStore(store_url).open()
    yield st
    st.close()


@pytest.fixture
def run_id(store: MetadataStore) -> str:
    run, _ = store.runs.create(pipeline="p", host="h", pid=1, executor="local", lease_s=60)
    return run.id


def _points(*items: tuple[str, int, float]) -> list[tuple[str, int, float, float]]:
    now = time.time()
    return [check_point(k, v, st, now + i) for i, (k, st, v) in enumerate(items)]


def test_a_series_comes_back_sorted_by_step(store: MetadataStore, run_id: str) -> None:
    steps = [5, -3, 100, 0, 2, 99, 1]
    store.metrics.write_batch(run_id, _points(*[("loss", st, st * 0.5) for st in steps]))
    history = store.metrics.history(run_id, "loss")
    assert [p.step for p in history] == sorted(steps)
    assert all(p.value == p.step * 0.5 for p in history)
    assert all(isinstance(p, MetricPoint) for p in history)


def test_points_keep_their_timestamps(store: MetadataStore, run_id: str) -> None:
    future = time.time() + 10 * 365 * 86400
    store.metrics.write_batch(
        run_id, [check_point("x", 1.0, 0, future), check_point("x", 2.0, 1, 0.0)]
    )
    history = store.metrics.history(run_id, "x")
    assert [p.timestamp for p in history] == [pytest.approx(future), 0.0]


def test_series_of_different_runs_and_keys_are_separate(store: MetadataStore, run_id: str) -> None:
    other, _ = store.runs.create(pipeline="p", host="h", pid=1, executor="local", lease_s=60)
    store.metrics.write_batch(run_id, _points(("a", 0, 1.0), ("b", 0, 2.0)))
    store.metrics.write_batch(other.id, _points(("a", 0, 3.0)))
    assert [p.value for p in store.metrics.history(run_id, "a")] == [1.0]
    assert [p.value for p in store.metrics.history(run_id, "b")] == [2.0]
    assert [p.value for p in store.metrics.history(other.id, "a")] == [3.0]
    assert store.metrics.history(other.id, "b") == []
    assert store.metrics.keys(run_id) == ["a", "b"]
    assert store.metrics.keys(other.id) == ["a"]
    assert store.metrics.count(run_id) == 2
    assert store.metrics.count() == 3


def test_the_same_step_twice_keeps_one_row_last_wins(store: MetadataStore, run_id: str) -> None:
    store.metrics.write_batch(run_id, _points(("x", 3, 1.0)))
    store.metrics.write_batch(run_id, _points(("x", 3, 1.0)))
    assert store.metrics.count(run_id) == 1
    store.metrics.write_batch(run_id, _points(("x", 3, 7.5)))
    assert [(p.step, p.value) for p in store.metrics.history(run_id, "x")] == [(3, 7.5)]
    assert store.runs.get(run_id).metrics == {"x": 7.5}


def test_duplicates_inside_one_batch_keep_the_last(store: MetadataStore, run_id: str) -> None:
    store.metrics.write_batch(
        run_id, _points(("x", 1, 1.0), ("x", 1, 2.0), ("x", 0, 5.0), ("x", 1, 3.0))
    )
    assert [(p.step, p.value) for p in store.metrics.history(run_id, "x")] == [(0, 5.0), (1, 3.0)]
    assert store.runs.get(run_id).metrics == {"x": 3.0}


def test_latest_value_is_the_one_at_the_highest_step(store: MetadataStore, run_id: str) -> None:
    store.metrics.write_batch(run_id, _points(("x", 10, 1.0), ("x", 2, 9.0)))
    assert store.runs.get(run_id).metrics["x"] == 1.0
    store.metrics.write_batch(run_id, _points(("x", 5, 4.0)))  # lower step, later batch
    assert store.runs.get(run_id).metrics["x"] == 1.0
    store.metrics.write_batch(run_id, _points(("x", 10, 2.0)))  # same highest step rewritten
    assert store.runs.get(run_id).metrics["x"] == 2.0
    store.metrics.write_batch(run_id, _points(("x", 11, 3.0)))
    assert store.runs.get(run_id).metrics["x"] == 3.0


@pytest.mark.parametrize(
    "value", [math.inf, -math.inf, math.nan, 0.0, -0.0, 1e308, -1e-308, 5e-324]
)
def test_special_floats_round_trip(store: MetadataStore, run_id: str, value: float) -> None:
    store.metrics.write_batch(run_id, _points(("v", 0, value)))
    (point,) = store.metrics.history(run_id, "v")
    latest = store.runs.get(run_id).metrics["v"]
    if math.isnan(value):
        assert math.isnan(point.value) and math.isnan(latest)
    else:
        assert point.value == value and latest == value


@pytest.mark.parametrize("step", [2**63 - 1, -(2**63), 0, -1])
def test_steps_at_the_64_bit_limits_are_stored(
    store: MetadataStore, run_id: str, step: int
) -> None:
    store.metrics.write_batch(run_id, _points(("s", step, 1.0)))
    assert [p.step for p in store.metrics.history(run_id, "s")] == [step]


@pytest.mark.parametrize("step", [2**63, -(2**63) - 1, 10**30])
def test_steps_outside_64_bits_are_rejected(step: int) -> None:
    with pytest.raises(InvalidParameterError, match="64-bit") as info:
        check_point("s", 1.0, step, time.time())
    assert "'s'" in str(info.value)


@pytest.mark.parametrize("step", [1.5, "3", True, None, 2.0])
def test_non_integer_steps_are_rejected(step: object) -> None:
    with pytest.raises(InvalidParameterError, match="integer"):
        check_point("s", 1.0, step, time.time())


@pytest.mark.parametrize("value", ["0.5", None, b"1", [1.0], {"v": 1}, 1 + 2j])
def test_non_numeric_values_are_rejected(value: object) -> None:
    with pytest.raises(InvalidParameterError, match="expected a number") as info:
        check_point("acc", value, 0, time.time())
    assert "'acc'" in str(info.value)


@pytest.mark.parametrize("key", ["", None, 3, "k" * 251])
def test_bad_metric_names_are_rejected(key: object) -> None:
    with pytest.raises(InvalidParameterError, match="non-empty string"):
        check_point(key, 1.0, 0, time.time())


def test_the_longest_allowed_key_is_stored(store: MetadataStore, run_id: str) -> None:
    key = "k" * 250
    store.metrics.write_batch(run_id, _points((key, 0, 1.0)), params={key: 1}, tags={key: "t"})
    record = store.runs.get(run_id)
    assert (
        record.metrics == {key: 1.0} and record.params == {key: "1"} and record.tags == {key: "t"}
    )


def test_params_and_tags_are_stored_and_overwritten(store: MetadataStore, run_id: str) -> None:
    store.metrics.write_batch(
        run_id, params={"alpha": 0.5, "layers": 3, "opt": "adam", "flag": True}, tags={"team": "a"}
    )
    store.metrics.write_batch(run_id, params={"alpha": 0.25}, tags={"team": "b", "stage": 2})  # type: ignore[dict-item]
    record = store.runs.get(run_id)
    assert record.params == {"alpha": "0.25", "layers": "3", "opt": "adam", "flag": "true"}
    assert record.tags == {"team": "b", "stage": "2"}


def test_bad_param_and_tag_names_write_nothing(store: MetadataStore, run_id: str) -> None:
    with pytest.raises(InvalidParameterError, match="Param"):
        store.metrics.write_batch(run_id, _points(("x", 0, 1.0)), params={"": 1})
    with pytest.raises(InvalidParameterError, match="Tag"):
        store.metrics.write_batch(run_id, _points(("x", 0, 1.0)), tags={"k" * 300: "v"})
    assert store.metrics.count(run_id) == 0
    assert store.runs.get(run_id).params == {}


@pytest.mark.parametrize(
    ("value", "text", "num"),
    [
        (0.1, "0.1", 0.1),
        (3, "3", 3.0),
        (True, "true", 1.0),
        (False, "false", 0.0),
        ("adam", "adam", None),
        (float("nan"), "nan", None),
        (float("inf"), "inf", None),
        (None, "None", None),
        ([1, 2], "[1, 2]", None),
    ],
)
def test_param_values_keep_their_text_and_a_numeric_copy(
    value: object, text: str, num: float | None
) -> None:
    assert param_value(value) == (text, num)


def test_an_empty_batch_writes_nothing(store: MetadataStore, run_id: str) -> None:
    store.metrics.write_batch(run_id)
    assert store.metrics.count() == 0


def test_a_big_batch_is_written_in_one_call(store: MetadataStore, run_id: str) -> None:
    now = time.time()
    points = [check_point(f"k{i % 5}", float(i), i, now) for i in range(20_000)]
    store.metrics.write_batch(run_id, points)
    assert store.metrics.count(run_id) == 20_000
    assert store.runs.get(run_id).metrics == {f"k{j}": float(19_995 + j) for j in range(5)}
    history = store.metrics.history(run_id, "k3")
    assert len(history) == 4_000 and [p.step for p in history] == sorted(p.step for p in history)


def test_metrics_of_a_deleted_run_go_with_it(store: MetadataStore, run_id: str) -> None:
    """Foreign keys cascade on both backends (SQLite needs PRAGMA foreign_keys=ON)."""
    store.metrics.write_batch(run_id, _points(("x", 0, 1.0)), params={"a": 1}, tags={"t": "v"})
    store.db.write(lambda tx: tx.execute("DELETE FROM runs WHERE id = ?", (run_id,)))
    assert store.metrics.count() == 0
    assert store.metrics.keys(run_id) == []


def test_metrics_for_an_unknown_run_are_refused(store: MetadataStore) -> None:
    """No orphan rows: points for a run that does not exist are refused with a loopml error."""
    from loopml.errors import NotFoundError

    with pytest.raises(NotFoundError):
        store.metrics.write_batch("0" * 32, _points(("x", 0, 1.0)))
    assert store.metrics.count() == 0


def test_numpy_numbers_are_accepted(store: MetadataStore, run_id: str) -> None:
    import numpy as np

    points = [
        check_point("np", np.float32(0.5), np.int64(3), time.time()),
        check_point("np", np.float64("nan"), np.int32(4), time.time()),
    ]
    store.metrics.write_batch(run_id, points)
    history = store.metrics.history(run_id, "np")
    assert [(p.step, type(p.step)) for p in history] == [(3, int), (4, int)]
    assert history[0].value == 0.5 and math.isnan(history[1].value)
