"""R15: metric semantics are defined (docs/tracking.md "Metric semantics") and enforced.

Each case logs a few points three ways, on SQLite and PostgreSQL: straight into the store
one transaction per point, into the store as one batch, and through the public API
(``loopml.start_run``, buffered). A small reference model of the documented rules says
what must happen to every point: rejected (``InvalidParameterError`` at the call), stored
as given, or stored and then replaced by a later write to the same step (counted as
"flagged"). The observed history and latest value must equal the model's, and a table of
observed accepted / flagged / rejected counts is printed per case.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import loopml
from loopml.errors import InvalidParameterError
from loopml.store import MetadataStore
from loopml.store.metrics import check_point
from loopml.tracking.client import Client

NOW = time.time()
INT64 = (-(2**63), 2**63 - 1)
Point = tuple[Any, Any, float | None]  # value, step (None: next default), timestamp (None: now)

CASES: dict[str, list[Point]] = {
    "same step, equal values": [(1.0, 3, None), (1.0, 3, None)],
    "same step, different values": [(1.0, 3, None), (2.0, 3, None), (0.5, 3, None)],
    "out-of-order steps": [(float(s), s, None) for s in (5, 1, 3, 0, 4, 2)],
    "NaN and +-Inf": [
        (math.nan, 0, None),
        (math.inf, 1, None),
        (-math.inf, 2, None),
        (math.nan, 3, None),
    ],
    "steps at the int64 limits": [(1.0, 2**63 - 1, None), (2.0, -(2**63), None), (3.0, 0, None)],
    "steps beyond int64": [
        (1.0, 2**63, None),
        (2.0, -(2**63) - 1, None),
        (3.0, 10**20, None),
        (4.0, 7, None),
    ],
    "future timestamps": [(1.0, 0, NOW + 86_400), (2.0, 1, NOW + 10 * 365 * 86_400), (3.0, 2, 0.0)],
    "non-numeric values": [
        ("0.5", 0, None),
        (None, 1, None),
        ([1.0], 2, None),
        (b"1", 3, None),
        (5.0, 4, None),
    ],
    "non-integer steps": [(1.0, 1.5, None), (1.0, "2", None), (1.0, True, None), (1.0, 9, None)],
    "latest is the highest step": [
        (1.0, 10, None),
        (2.0, 2, None),
        (3.0, 5, None),
        (4.0, 10, None),
    ],
}
API_ONLY_CASES: dict[str, list[Point]] = {
    "default steps": [
        (1.0, None, None),
        (2.0, None, None),
        (3.0, 10, None),
        (4.0, None, None),
        (5.0, 4, None),
        (6.0, None, None),
    ],
}


@dataclass
class Outcome:
    accepted: int = 0
    flagged: int = 0  # stored, then replaced by a later write to the same step
    rejected: int = 0
    rows: int = 0


def _valid(value: Any, step: Any) -> bool:
    if not isinstance(value, numbers.Real):
        return False
    return isinstance(step, int) and not isinstance(step, bool) and INT64[0] <= step <= INT64[1]


def _model(points: list[Point]) -> tuple[dict[int, tuple[float, float | None]], list[bool]]:
    """The documented rules: {step: (value, timestamp)} that must be stored, and which calls raise."""
    series: dict[int, tuple[float, float | None]] = {}
    raised = []
    next_step = 0
    for value, step, ts in points:
        step = next_step if step is None else step
        ok = _valid(value, step)
        raised.append(not ok)
        if ok:
            series[step] = (float(value), ts)
            next_step = max(next_step, step + 1)
    return series, raised


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _observe(points: list[Point], raised: list[bool], history: list[Any]) -> Outcome:
    final = {p.step: p.value for p in history}
    out = Outcome(rows=len(history), rejected=sum(raised))
    next_step = 0
    for (value, step, _ts), was_rejected in zip(points, raised, strict=True):
        if was_rejected:
            continue
        step = next_step if step is None else step
        next_step = max(next_step, step + 1)
        if step in final and _same(final[step], float(value)):
            out.accepted += 1
        else:
            out.flagged += 1
    return out


def _check(
    points: list[Point], raised: list[bool], history: list[Any], latest: float | None
) -> Outcome:
    series, model_raised = _model(points)
    assert raised == model_raised
    assert [p.step for p in history] == sorted(series)  # one row per step, sorted by step
    for p in history:
        value, ts = series[p.step]
        assert _same(p.value, value), (p.step, p.value, value)
        if ts is not None:
            assert p.timestamp == pytest.approx(ts)
    if series:
        top = series[max(series)][0]
        assert latest is not None and _same(latest, top)
    else:
        assert latest is None
    return _observe(points, raised, history)


# -- the three ways to log ----------------------------------------------------------------


def _via_store(
    store: MetadataStore, points: list[Point], *, one_batch: bool
) -> tuple[list[bool], str]:
    run, _ = store.runs.create(pipeline="r15", host="h", pid=1, executor="local", lease_s=600)
    raised, valid = [], []
    for value, step, ts in points:
        try:
            point = check_point("m", value, step, time.time() if ts is None else ts)
        except InvalidParameterError:
            raised.append(True)
            continue
        raised.append(False)
        if one_batch:
            valid.append(point)
        else:
            store.metrics.write_batch(run.id, [point])
    if valid:
        store.metrics.write_batch(run.id, valid)
    return raised, run.id


def _via_api(points: list[Point]) -> tuple[list[bool], str]:
    run = loopml.start_run("r15")
    raised = []
    for value, step, ts in points:
        try:
            run.log_metric("m", value, step=step, timestamp=ts)
        except InvalidParameterError:
            raised.append(True)
        else:
            raised.append(False)
    run.end()
    assert run.status == "succeeded"  # a rejected call does not spoil the run
    return raised, run.id


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    st = MetadataStore(store_url).open()
    yield st
    st.close()


def _table(title: str, rows: dict[str, Outcome]) -> str:
    lines = [
        f"\nR15 {title}",
        f"  {'case':<30} {'accepted':>8} {'flagged':>8} {'rejected':>8} {'rows':>5}",
    ]
    for case, o in rows.items():
        lines.append(f"  {case:<30} {o.accepted:>8} {o.flagged:>8} {o.rejected:>8} {o.rows:>5}")
    return "\n".join(lines)


@pytest.mark.parametrize("mode", ["one transaction per point", "one batch"])
def test_r15_metric_semantics_in_the_store(store: MetadataStore, store_url: str, mode: str) -> None:
    rows = {}
    for case, points in CASES.items():
        raised, run_id = _via_store(store, points, one_batch=mode == "one batch")
        history = store.metrics.history(run_id, "m")
        latest = store.runs.get(run_id).metrics.get("m")
        rows[case] = _check(points, raised, history, latest)
    print(_table(f"{store_url.split(':')[0]}, store, {mode}", rows))
    _assert_outcomes(rows)


def test_r15_metric_semantics_through_the_public_api(client: Client, store_url: str) -> None:
    rows = {}
    for case, points in {**CASES, **API_ONLY_CASES}.items():
        raised, run_id = _via_api(points)
        run = client.get_run(run_id)
        rows[case] = _check(points, raised, run.metric_history("m"), run.metrics.get("m"))
    print(_table(f"{store_url.split(':')[0]}, public API (buffered)", rows))
    _assert_outcomes(rows)


def _assert_outcomes(rows: dict[str, Outcome]) -> None:
    """The headline of each case, in words a user would check."""
    assert rows["same step, equal values"].rows == 1
    assert (
        rows["same step, different values"].rows == 1
        and rows["same step, different values"].flagged == 2
    )
    assert rows["NaN and +-Inf"].accepted == 4 and rows["NaN and +-Inf"].rejected == 0
    assert rows["steps at the int64 limits"].rejected == 0
    assert rows["steps beyond int64"].rejected == 3 and rows["steps beyond int64"].rows == 1
    assert rows["future timestamps"].accepted == 3
    assert rows["non-numeric values"].rejected == 4
    assert rows["non-integer steps"].rejected == 3


def test_r15_a_rejection_names_the_metric_and_the_problem(client: Client) -> None:
    run = loopml.start_run("strict")
    try:
        with pytest.raises(InvalidParameterError) as step_error:
            run.log_metric("acc", 0.5, step=2**63)
        with pytest.raises(ValueError) as value_error:  # InvalidParameterError is a ValueError
            run.log_metric("acc", "high")
    finally:
        run.end()
    assert "'acc'" in str(step_error.value) and "64-bit" in str(step_error.value)
    assert "'acc'" in str(value_error.value) and "number" in str(value_error.value)
    assert run.status == "succeeded"


def test_r15_module_level_logging_in_a_with_block(client: Client) -> None:
    """The documented example: ``with loopml.start_run() as run: loopml.log_metric(...)``."""
    with loopml.start_run("semantics") as run:
        loopml.log_metric("acc", 0.5, step=1)
        loopml.log_metric("acc", 0.7, step=1)
        loopml.log_metric("acc", 0.6, step=0)
        loopml.log_metric("loss", float("nan"))
        loopml.log_metric("loss", float("inf"), step=2**63 - 1)
    assert [(p.step, p.value) for p in run.metric_history("acc")] == [(0, 0.6), (1, 0.7)]
    assert run.metrics["acc"] == 0.7 and run.metrics["loss"] == math.inf
    assert math.isnan(run.metric_history("loss")[0].value)
    assert run.status == "succeeded"


def _log_bad(run: Any, kind: str) -> None:
    import datetime

    if kind == "NaN timestamp":
        run.log_metric("bad", 1.0, step=0, timestamp=math.nan)
    elif kind == "inf timestamp":
        run.log_metric("bad", 1.0, step=0, timestamp=math.inf)
    elif kind == "datetime timestamp":
        run.log_metric("bad", 1.0, step=0, timestamp=datetime.datetime.now())
    elif kind == "NUL in a metric name":
        run.log_metric("a\x00b", 1.0, step=0)
    elif kind == "NUL in a param value":
        run.log_param("p", "a\x00b")
    elif kind == "NUL in a tag value":
        run.set_tag("t", "a\x00b")


@pytest.mark.parametrize(
    "kind",
    [
        "NaN timestamp",
        "inf timestamp",
        "datetime timestamp",
        "NUL in a metric name",
        "NUL in a param value",
        "NUL in a tag value",
    ],
)
def test_r15_a_bad_value_is_rejected_at_the_call_and_costs_nothing_else(
    client: Client, kind: str
) -> None:
    """Validation happens at the call (docs: "a bad value raises right there"), the same on every backend."""
    run = loopml.start_run("bad-input")
    try:
        run.log_metric("good", 1.0, step=0)
        run.log_param("alpha", 0.5)
        with pytest.raises(InvalidParameterError):
            _log_bad(run, kind)
    finally:
        run.end()
    assert run.status == "succeeded"
    assert [(p.step, p.value) for p in run.metric_history("good")] == [(0, 1.0)]
    assert run.params == {"alpha": "0.5"}
