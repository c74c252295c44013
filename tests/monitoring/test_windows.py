"""Which windows a monitor evaluates: fixed or sliding, aligned to the monitor's origin,
only those that have closed, and a clear error instead of an endless backfill."""

from __future__ import annotations

import pytest

from loopml.errors import InvalidParameterError
from loopml.monitoring.engine import MAX_WINDOWS, window_starts
from loopml.store import MonitorRecord

HOUR = 3600.0
DAY = 24 * HOUR


def _record(window_s: float = HOUR, every_s: float | None = None, origin: float = 0.0):  # type: ignore[no-untyped-def]
    return MonitorRecord(
        name="m",
        model="churn@production",
        reference="training",
        window_s=window_s,
        every_s=window_s if every_s is None else every_s,
        origin=origin,
        rules="",
    )


def test_fixed_windows_back_to_back_until_the_last_closed_one() -> None:
    record = _record()
    assert window_starts(record, 0.0, 3 * HOUR) == [0.0, HOUR, 2 * HOUR]
    # The window [2h, 3h) is still open one second before 3h.
    assert window_starts(record, 0.0, 3 * HOUR - 1) == [0.0, HOUR]


def test_nothing_closed_yet_is_no_window() -> None:
    assert window_starts(_record(), 0.0, HOUR - 0.001) == []
    assert window_starts(_record(), 5 * HOUR, 5 * HOUR) == []


def test_windows_start_on_the_grid_of_the_origin() -> None:
    record = _record(origin=1800.0)
    # From 0 the first start on the grid at or after it is 1800 (half past midnight).
    assert window_starts(record, 0.0, 4 * HOUR) == [1800.0, 1800.0 + HOUR, 1800.0 + 2 * HOUR]
    # A start between grid points begins at the next one.
    assert window_starts(record, 2000.0, 4 * HOUR) == [1800.0 + HOUR, 1800.0 + 2 * HOUR]
    # A start exactly on the grid includes that window.
    assert window_starts(record, 1800.0 + HOUR, 4 * HOUR)[0] == 1800.0 + HOUR


def test_sliding_windows_overlap_and_each_closes_by_its_own_end() -> None:
    record = _record(window_s=2 * HOUR, every_s=HOUR)
    starts = window_starts(record, 0.0, 5 * HOUR)
    assert starts == [0.0, HOUR, 2 * HOUR, 3 * HOUR]  # [3h, 5h) is the last closed
    assert all(s + record.window_s <= 5 * HOUR for s in starts)


def test_daily_windows_at_a_real_epoch_keep_exact_boundaries() -> None:
    origin = 1_700_006_400.0  # a UTC midnight
    record = _record(window_s=DAY, origin=origin)
    starts = window_starts(record, origin, origin + 30 * DAY)
    assert len(starts) == 30
    assert starts[0] == origin and starts[-1] == origin + 29 * DAY
    assert all(b - a == DAY for a, b in zip(starts, starts[1:], strict=False))


def test_fractional_steps_do_not_lose_a_window_to_rounding() -> None:
    record = _record(window_s=0.1, origin=0.3)
    assert len(window_starts(record, 0.3, 0.3 + 3 * 0.1)) == 3


def test_a_backfill_of_too_many_windows_is_refused_with_the_count() -> None:
    record = _record(window_s=60.0)
    assert len(window_starts(record, 0.0, MAX_WINDOWS * 60.0)) == MAX_WINDOWS
    with pytest.raises(InvalidParameterError) as info:
        window_starts(record, 0.0, (MAX_WINDOWS + 1) * 60.0)
    message = str(info.value)
    assert f"{MAX_WINDOWS + 1:,} windows" in message
    assert "'m'" in message and "--from" in message
