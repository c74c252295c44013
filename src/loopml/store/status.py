"""The one list of run and step statuses.

The schema holds the same lists as CHECK constraints (migration 0003), so a status that is
not here can never be stored. ``StrEnum`` members compare equal to their text, so
``record.status == "failed"`` and ``record.status == RunStatus.FAILED`` both work.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run is in its life; every status but ``running`` is final."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # an exception, or a non-zero exit
    CANCELLED = "cancelled"  # Ctrl-C or SIGTERM
    CRASHED = "crashed"  # its process stopped heartbeating (killed, lost)


class StepStatus(StrEnum):
    """Where one step of a run is; ``pending`` and ``running`` are not final."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # an upstream step failed, or the run stopped first
    CANCELLED = "cancelled"
    CRASHED = "crashed"


FINAL_RUN_STATUSES = tuple(s for s in RunStatus if s is not RunStatus.RUNNING)
UNFINISHED_STEP_STATUSES = (StepStatus.PENDING, StepStatus.RUNNING)


class FireStatus(StrEnum):
    """Where one fire of a schedule (a ``(schedule, due time)`` pair) is.

    ``pending`` waits for its start (or for its next attempt after a retry back-off);
    ``running`` has a run in a child process; the rest are final. ``skipped`` is a missed
    fire the schedule's catch-up policy did not run (recorded, never silent); ``crashed``
    is a fire whose scheduler died while it ran (it is not started again).
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CRASHED = "crashed"


FINAL_FIRE_STATUSES = tuple(
    s for s in FireStatus if s not in (FireStatus.PENDING, FireStatus.RUNNING)
)
