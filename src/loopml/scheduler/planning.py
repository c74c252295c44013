"""Which due times of a schedule run and which are skipped: the catch-up policies.

At each tick a scheduler plans the due times in ``(decided_until, now]``. Those due less
than ``grace_s`` ago (60 s by default) are *on time* and always run. Older ones were
*missed* (no scheduler ran, or the store was unreachable) and follow the schedule's
catch-up policy:

- ``once`` (the default): the latest missed due time runs once (a ``catchup`` fire); the
  earlier missed ones are recorded as ``skipped`` fires, visible in ``loopml schedule
  show``. Never a silent skip, never a burst.
- ``skip``: every missed due time is recorded ``skipped``; only on-time fires run.
- ``all``: every missed due time runs, oldest first, at most :data:`RUN_CAP` per tick
  (the next ticks take the rest, so a long outage drains at a steady pace).

At most :data:`SKIP_CAP` skipped fires are recorded per schedule and tick: an every-second
schedule after a week down writes 100 rows, not 600,000. The oldest recorded skip then
says that earlier due times were missed too.
"""

from __future__ import annotations

from loopml.scheduler.cron import iso_utc, parse
from loopml.store.schedules import FirePlan, ScheduleRecord
from loopml.store.status import FireStatus

#: Skipped fires recorded per schedule and tick (the newest ones).
SKIP_CAP = 100
#: Fires a ``catchup = "all"`` schedule starts per tick.
RUN_CAP = 100
#: Due times younger than this are on time (run under every policy).
GRACE_S = 60.0

Row = tuple[float, str, FireStatus, str | None]


def plan(schedule: ScheduleRecord, now: float, *, grace_s: float = GRACE_S) -> FirePlan | None:
    """The fires to record for ``schedule`` at ``now``; None when nothing is due."""
    if schedule.paused or schedule.decided_until >= now:
        return None
    cron = parse(schedule.cron, schedule.timezone)
    after = schedule.decided_until
    cutoff = max(after, now - grace_s)  # due times <= cutoff were missed
    rows: list[Row] = []
    decided = now
    if schedule.catchup == "all":
        due = cron.between(after, now, limit=RUN_CAP + 1)
        if len(due) > RUN_CAP:
            due = due[:RUN_CAP]
            decided = due[-1]
        rows = [(t, "catchup" if t <= cutoff else "cron", FireStatus.PENDING, None) for t in due]
    else:
        missed = cron.latest(after, cutoff, limit=SKIP_CAP + 2)
        on_time = cron.between(cutoff, now)
        run_latest = schedule.catchup == "once" and bool(missed)
        skipped = missed[:-1] if run_latest else missed
        more = len(skipped) > SKIP_CAP
        skipped = skipped[-SKIP_CAP:]
        why = f"missed while no scheduler ran; catch-up {schedule.catchup!r} " + (
            "runs only the latest missed fire" if run_latest else "runs none of them"
        )
        for i, t in enumerate(skipped):
            note = why
            if i == 0 and more:
                note += (
                    f"; earlier due times since {iso_utc(after)} were missed too and are not "
                    f"recorded one by one (at most {SKIP_CAP} skips per catch-up)"
                )
            rows.append((t, "catchup", FireStatus.SKIPPED, note))
        if run_latest:
            rows.append((missed[-1], "catchup", FireStatus.PENDING, None))
        rows += [(t, "cron", FireStatus.PENDING, None) for t in on_time]
    return FirePlan(
        name=schedule.name,
        generation=schedule.generation,
        decided_from=schedule.decided_until,
        decided_until=decided,
        rows=tuple(rows),
    )
