"""Cron expressions in a time zone, as UTC instants (croniter underneath, imported lazily).

An expression has 5 fields (``minute hour day-of-month month day-of-week``) or 6 with
**seconds first** (``second minute hour day-of-month month day-of-week``, as in Quartz,
Spring and node-cron), so ``*/10 * * * * *`` fires every 10 seconds.

Times are wall-clock times in the schedule's IANA time zone; every instant returned is a
UTC Unix timestamp (float), which is all that is ever stored. Daylight-saving rules
(``docs/scheduling.md``):

- a wall time that does not exist (skipped by a spring-forward jump) fires once, at the
  same wall time read on the offset before the jump, i.e. *shifted later by the gap*:
  ``30 2 * * *`` in Europe/Berlin fires at 03:30 CEST on the last Sunday of March. When
  that substitute instant is itself a due time (an hourly ``0 * * * *`` maps 02:00 to
  03:00), the two are one fire.
- a wall time that happens twice (fall-back) fires once, at its first occurrence.

So a schedule fires once per matching wall-clock time: an hourly schedule in a zone with
DST has 23 fires on the spring-forward day and 24 on the fall-back day (the repeated hour
runs once). A schedule in ``UTC`` is never affected.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from loopml.errors import InvalidParameterError

#: A DST jump is at most this long anywhere (historic double summer time was 2 h).
_MARGIN = timedelta(hours=3)
_SPAN = _MARGIN.total_seconds()
_ONE_S = timedelta(seconds=1)  # get_prev() excludes its start: start just after `until`
_EXAMPLES = "e.g. '0 6 * * MON' (06:00 every Monday) or '*/30 * * * * *' (every 30 seconds)"


@lru_cache(maxsize=256)
def zone(name: str) -> Any:
    """The ``ZoneInfo`` for an IANA name; a clear error for an unknown one."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise InvalidParameterError(
            f"Time zone {name!r}: expected an IANA name such as 'UTC', 'Europe/Berlin' or "
            "'America/New_York'."
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        import difflib
        import zoneinfo

        close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InvalidParameterError(
            f"Time zone {name!r} is not a known IANA time zone name.{hint} Use a name such as "
            "'UTC', 'Europe/Berlin' or 'America/New_York'."
        ) from None


@dataclass(frozen=True, slots=True)
class Cron:
    """A validated cron expression and its time zone. Build it with :func:`parse`."""

    expr: str
    timezone: str = "UTC"

    @property
    def has_seconds(self) -> bool:
        return len(self.expr.split()) == 6

    def _iter(self, start: datetime, backward: bool) -> Iterator[datetime]:
        from croniter import croniter

        it = croniter(self.expr, start, second_at_beginning=self.has_seconds, ret_type=datetime)
        step = it.get_prev if backward else it.get_next
        while True:
            yield step(datetime)

    def _utc(self, wall: datetime) -> float:
        """A naive wall time in the zone as a UTC timestamp (the DST rules of the module doc)."""
        tz = zone(self.timezone)
        first = wall.replace(tzinfo=tz, fold=0)  # ambiguous: first occurrence; gap: shifted
        return first.timestamp()

    def _wall(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, UTC).astimezone(zone(self.timezone)).replace(tzinfo=None)

    def _fixed(self, after: float, until: float) -> bool:
        """Whether the zone keeps one UTC offset from ``after`` to ``until`` (and a margin).

        Offsets are sampled every 12 hours: no two DST transitions are closer than that.
        Then wall times map to instants monotonically and no margin is needed.
        """
        tz = zone(self.timezone)
        lo, hi = after - _SPAN, until + _SPAN
        first = datetime.fromtimestamp(lo, tz).utcoffset()
        t = lo
        while t < hi:
            t = min(t + 43200.0, hi)
            if datetime.fromtimestamp(t, tz).utcoffset() != first:
                return False
        return True

    def between(self, after: float, until: float, *, limit: int | None = None) -> list[float]:
        """Due instants in ``(after, until]``, oldest first, at most ``limit`` of them."""
        if until <= after:
            return []
        margin = timedelta(0) if self._fixed(after, until) else _MARGIN
        slack = margin.total_seconds() * 2
        found: set[float] = set()
        end = self._wall(until) + margin
        cut: float | None = None  # the limit-th instant found: later walls cannot beat it
        for wall in self._iter(self._wall(after) - margin, backward=False):
            ts = self._utc(wall)
            if wall > end or (cut is not None and ts > cut + slack):
                break
            if after < ts <= until:
                found.add(ts)
                if limit is not None and cut is None and len(found) >= limit:
                    cut = sorted(found)[limit - 1]
                    if not slack:
                        break
        return sorted(found)[:limit]

    def latest(self, after: float, until: float, *, limit: int) -> list[float]:
        """Up to ``limit`` due instants in ``(after, until]``, the *newest*, oldest first.

        Walks backward from ``until``, so it costs about ``limit`` steps however long the
        span is (a week of every-second fires is not enumerated).
        """
        if until <= after or limit <= 0:
            return []
        near = max(after, until - 86400.0)  # offsets only matter near where the walk stops
        margin = timedelta(0) if self._fixed(near, until) else _MARGIN
        slack = margin.total_seconds() * 2
        found: set[float] = set()
        cut: float | None = None
        for wall in self._iter(self._wall(until) + margin + _ONE_S, backward=True):
            ts = self._utc(wall)
            if ts < after - slack or (cut is not None and ts < cut - slack):
                break
            if after < ts <= until:
                found.add(ts)
                if cut is None and len(found) >= limit:
                    cut = sorted(found)[-limit]
                    if not slack:
                        break
        return sorted(found)[-limit:]

    def next_after(self, after: float) -> float:
        """The first due instant strictly after ``after``."""
        span = 3600.0
        while True:
            found = self.between(after, after + span, limit=1)
            if found:
                return found[0]
            if span > 400 * 86400 * 9:  # croniter itself refuses what never matches
                raise InvalidParameterError(f"Cron {self.expr!r} never fires.")
            span *= 8


def parse(expr: str, timezone: str = "UTC") -> Cron:
    """Validate ``expr`` (5 fields, or 6 with seconds first) and ``timezone``.

    Raises:
        InvalidParameterError: naming the expression or zone, what is wrong, and an example.
    """
    if not isinstance(expr, str):
        raise InvalidParameterError(f"Cron expression {expr!r}: expected a string; {_EXAMPLES}.")
    text = " ".join(expr.split())
    fields = len(text.split())
    if fields not in (5, 6):
        raise InvalidParameterError(
            f"Cron expression {expr!r} has {fields} field{'s' if fields != 1 else ''}; expected "
            "5 (minute hour day-of-month month day-of-week) or 6 with seconds first "
            f"(second minute hour day-of-month month day-of-week); {_EXAMPLES}."
        )
    from croniter import CroniterError, croniter

    try:
        croniter(text, datetime(2000, 1, 1), second_at_beginning=fields == 6)
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidParameterError(
            f"Cron expression {expr!r} is not valid ({exc}); {_EXAMPLES}."
        ) from None
    zone(timezone)
    cron = Cron(text, timezone)
    try:
        cron.next_after(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
    except (CroniterError, ValueError) as exc:  # e.g. '0 0 31 2 *': February 31st
        raise InvalidParameterError(
            f"Cron expression {expr!r} never fires ({exc}); {_EXAMPLES}."
        ) from None
    return cron


def iso_utc(ts: float | None) -> str | None:
    """A stored instant as ISO 8601 UTC (``2024-03-31T01:30:00Z``)."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")
