"""Cron expressions in a time zone (R29): DST transitions, two years of next fires, errors."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from loopml.errors import InvalidParameterError
from loopml.scheduler.cron import parse

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
TWO_YEARS = 2 * 366 * 86400
# (zone, spring-forward day, fall-back day) in 2024
ZONES = [
    ("Europe/Berlin", "2024-03-31", "2024-10-27"),
    ("America/New_York", "2024-03-10", "2024-11-03"),
]


def _walk(expr: str, tz: str) -> list[float]:
    """next_after() repeatedly over two years: the list a user sees as `next fire`."""
    cron, found, t = parse(expr, tz), [], START
    while t < START + TWO_YEARS:
        t = cron.next_after(t)
        found.append(t)
    return found


def _local(ts: float, tz: str) -> datetime:
    return datetime.fromtimestamp(ts, ZoneInfo(tz))


@pytest.mark.parametrize(("tz", "spring", "fall"), ZONES)
def test_daily_0230_fires_once_a_day_with_the_documented_substitute(
    tz: str, spring: str, fall: str
) -> None:
    fires = _walk("30 2 * * *", tz)
    days = Counter(_local(t, tz).date().isoformat() for t in fires)
    assert set(days.values()) == {1}  # every local day exactly once, none twice
    assert len(days) >= 731
    by_day = {_local(t, tz).date().isoformat(): _local(t, tz) for t in fires}
    assert by_day[spring].strftime("%H:%M") == "03:30"  # 02:30 does not exist: +1 h gap
    assert by_day[fall].strftime("%H:%M") == "02:30" and by_day[fall].fold == 0  # first one
    assert fires == sorted(set(fires))


@pytest.mark.parametrize(("tz", "spring", "fall"), ZONES)
def test_hourly_fires_once_per_wall_clock_hour(tz: str, spring: str, fall: str) -> None:
    cron = parse("0 * * * *", tz)
    day = datetime.fromisoformat(spring).replace(tzinfo=ZoneInfo(tz))
    fires = cron.between(day.timestamp() - 1, day.timestamp() + 2 * 86400 - 1)
    per_day = Counter(_local(t, tz).date().isoformat() for t in fires)
    assert per_day[spring] == 23
    day = datetime.fromisoformat(fall).replace(tzinfo=ZoneInfo(tz))
    fires = cron.between(day.timestamp() - 1, day.timestamp() + 86400 + 3600)
    per_day = Counter(_local(t, tz).date().isoformat() for t in fires)
    assert per_day[fall] == 24  # the repeated hour runs once
    assert len(fires) == len(set(fires))


def test_utc_is_unaffected() -> None:
    fires = _walk("30 2 * * *", "UTC")
    assert all(t % 86400 == 2 * 3600 + 1800 for t in fires)
    assert len(fires) >= 731


def test_six_fields_put_seconds_first() -> None:
    cron = parse("*/20 * * * * *")
    assert cron.between(START, START + 60) == [START + 20, START + 40, START + 60]


@pytest.mark.parametrize(
    ("expr", "tz", "message"),
    [
        ("61 * * * *", "UTC", "is not valid"),
        ("* * *", "UTC", "has 3 fields; expected 5"),
        ("0 0 31 2 *", "UTC", "never fires"),
        ("0 6 * * MON", "Europe/Berln", "Did you mean 'Europe/Berlin'"),
    ],
)
def test_bad_expressions_and_zones_are_named(expr: str, tz: str, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        parse(expr, tz)
