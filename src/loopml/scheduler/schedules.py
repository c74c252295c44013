"""Schedules as users manage them: what the CLI, the REST API and Python all call.

Every change takes ``by`` (who, for the audit: ``user@host`` from the CLI, ``token:NAME``
from the REST API). A schedule comes from one of two places, kept consistent:

- ``loopml schedule add`` (source ``cli``, also the REST API and Python): changed with
  ``add --replace`` and ``remove``;
- a ``[schedules.NAME]`` table of ``loopml.toml`` (source ``config``): :func:`sync_config`
  (run by every scheduler tick and by ``loopml schedules``) creates, updates and removes
  those to match the file; ``add --replace`` and ``remove`` refuse them and say to edit
  the file. Pause, resume and run-now work on both (a ``paused = true`` in the file wins
  again when the table itself changes).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from loopml.config import parse_duration
from loopml.errors import ConflictError, InvalidParameterError, LoopmlError, NotFoundError
from loopml.scheduler.cron import iso_utc, parse
from loopml.store.fires import FireRecord, FireView
from loopml.store.schedules import CATCHUP_POLICIES, OVERLAP_POLICIES, ScheduleRecord

log = logging.getLogger("loopml.scheduler")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidParameterError(
            f"Schedule name {str(name)[:40]!r}: use letters, digits, '.', '_' and '-' "
            "(at most 100 characters), e.g. weekly-score."
        )
    return name


def make_record(
    name: str,
    *,
    pipeline: str,
    cron: str,
    timezone: str = "UTC",
    params: dict[str, Any] | None = None,
    timeout: str | float | None = None,
    retries: int = 0,
    backoff: str | float = 60.0,
    catchup: str = "once",
    overlap: str = "wait",
    paused: bool = False,
    source: str = "cli",
    by: str = "",
) -> ScheduleRecord:
    """A checked schedule definition (nothing is written)."""
    check_name(name)
    expr = parse(cron, timezone)
    if catchup not in CATCHUP_POLICIES:
        raise InvalidParameterError(
            f"Catch-up policy {catchup!r} of schedule {name!r}: expected one of "
            f"{', '.join(CATCHUP_POLICIES)} ('once', the default, runs the latest missed fire "
            "and records the others as skipped)."
        )
    if overlap not in OVERLAP_POLICIES:
        raise InvalidParameterError(
            f"Overlap policy {overlap!r} of schedule {name!r}: expected one of "
            f"{', '.join(OVERLAP_POLICIES)} ('wait', the default, starts a fire due while the "
            "previous one runs once that one ends; 'skip' records it skipped; 'allow' runs both)."
        )
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
        raise InvalidParameterError(
            f"Retries {retries!r} of schedule {name!r}: expected a whole number from 0 to 100."
        )
    if not isinstance(pipeline, str) or not pipeline:
        raise InvalidParameterError(f"Schedule {name!r}: name the pipeline to run.")
    _check_text(name, params or {})
    backoff_s = parse_duration(backoff, what=f"Back-off of schedule {name!r}")
    assert backoff_s is not None
    return ScheduleRecord(
        name=name,
        pipeline=pipeline,
        cron=expr.expr,
        timezone=timezone,
        params=dict(params or {}),
        timeout_s=parse_duration(timeout, what=f"Timeout of schedule {name!r}"),
        retries=retries,
        backoff_s=backoff_s,
        catchup=catchup,
        overlap=overlap,
        paused=paused,
        source=source,
        updated_by=by,
    )


def _check_text(name: str, value: Any) -> None:
    """Parameters are stored as JSON and passed on the command line: text that is not valid
    Unicode (a lone surrogate, from bytes that were not UTF-8) is refused here, not later by
    every reader of the schedule."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(name, key)
            _check_text(name, item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_text(name, item)
    elif isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidParameterError(
                f"Schedule {name!r}: parameter text {value[:40]!r} has a lone surrogate at "
                f"character {exc.start} (bytes that were not UTF-8); expected valid Unicode."
            ) from None


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _editable(client: Any, name: str, action: str) -> None:
    found = client.metadata.schedules.find(name)
    if found is not None and found.source == "config":
        raise ConflictError(
            f"Schedule {name!r} is declared in loopml.toml ([schedules.{name}]): {action} it "
            "by editing that file (the scheduler and `loopml schedules` apply it)."
        )


def check_pipeline(client: Any, record: ScheduleRecord) -> None:
    """The pipeline exists in the project and takes the schedule's parameters."""
    from loopml.pipelines.discovery import find_pipeline
    from loopml.scheduler.loop import param_args

    target = find_pipeline(client.settings, record.pipeline)
    target.parse_params(param_args(record.params))


def add(
    client: Any,
    record: ScheduleRecord,
    *,
    replace: bool = False,
    check: bool = True,
    now: float | None = None,
) -> ScheduleRecord:
    """Create a schedule (or, with ``replace``, change it); checks the pipeline first."""
    store = client.metadata.schedules
    existing = store.find(record.name)
    if existing is not None:
        if existing.source == "config":
            _editable(client, record.name, "change")
        if not replace:
            raise ConflictError(
                f"Schedule {record.name!r} already exists; pass --replace to change it, or "
                f"`loopml schedule remove {record.name}` first."
            )
    if check:
        check_pipeline(client, record)
    stored, _ = store.put(record, now=_now(now))
    return stored  # type: ignore[no-any-return]


def pause(client: Any, name: str, *, by: str, now: float | None = None) -> ScheduleRecord:
    return client.metadata.schedules.set_paused(name, True, by=by, now=_now(now))  # type: ignore[no-any-return]


def resume(client: Any, name: str, *, by: str, now: float | None = None) -> ScheduleRecord:
    """Resume: fires from the next due time on (the paused span is not caught up)."""
    return client.metadata.schedules.set_paused(name, False, by=by, now=_now(now))  # type: ignore[no-any-return]


def remove(client: Any, name: str, *, by: str, now: float | None = None) -> ScheduleRecord:
    """Delete a schedule made with ``add``; its pending fires are recorded skipped."""
    _editable(client, name, "remove")
    removed = client.metadata.schedules.remove(name, now=_now(now))
    log.info("schedule %s removed by %s", name, by)
    return removed  # type: ignore[no-any-return]


def run_now(client: Any, name: str, *, by: str, now: float | None = None) -> FireRecord:
    """A fire outside the cron, started by the next scheduler tick (paused or not)."""
    return client.metadata.schedules.add_manual(name, now=_now(now), by=by)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule with its next fire time and its last finished fire."""

    record: ScheduleRecord
    next_fire: float | None
    last: FireView | None

    def to_json(self) -> dict[str, Any]:
        r, last = self.record, self.last
        return {
            "name": r.name,
            "pipeline": r.pipeline,
            "cron": r.cron,
            "timezone": r.timezone,
            "params": r.params,
            "timeout_s": r.timeout_s,
            "retries": r.retries,
            "backoff_s": r.backoff_s,
            "catchup": r.catchup,
            "overlap": r.overlap,
            "paused": r.paused,
            "source": r.source,
            "next_fire": iso_utc(self.next_fire),
            "last_status": None if last is None else str(last.fire.status),
            "last_due": None if last is None else iso_utc(last.fire.due_at),
            "last_run_id": None if last is None else last.fire.run_id,
            "last_duration_s": None if last is None else last.run_duration_s,
            "last_cost": None if last is None else last.run_cost,
            "updated_at": iso_utc(r.updated_at),
            "updated_by": r.updated_by,
        }


def fire_json(view: FireView) -> dict[str, Any]:
    """One fire as JSON (``loopml schedule show --json`` and the REST API)."""
    f = view.fire
    return {
        "id": f.id,
        "schedule": f.schedule,
        "due": iso_utc(f.due_at),
        "kind": f.kind,
        "status": str(f.status),
        "attempt": f.attempt,
        "run_id": f.run_id,
        "started": iso_utc(f.started_at),
        "ended": iso_utc(f.ended_at),
        "error": f.error,
        "requested_by": f.requested_by,
        "run_status": None if view.run_status is None else str(view.run_status),
        "duration_s": view.run_duration_s,
        "cost": view.run_cost,
    }


def info(client: Any, record: ScheduleRecord, *, now: float | None = None) -> ScheduleInfo:
    next_fire = None
    if not record.paused:
        next_fire = parse(record.cron, record.timezone).next_after(
            max(_now(now), record.decided_until)
        )
    return ScheduleInfo(
        record, next_fire, client.metadata.schedules.fires.last_finished(record.name)
    )


def list_schedules(
    client: Any, *, now: float | None = None, sync: bool = True
) -> list[ScheduleInfo]:
    """Every schedule (``loopml.toml`` synced first unless ``sync=False``)."""
    if sync and not client.readonly:
        sync_config(client, now=now)
    return [info(client, r, now=now) for r in client.metadata.schedules.list()]


def get(client: Any, name: str, *, now: float | None = None) -> ScheduleInfo:
    return info(client, client.metadata.schedules.get(name), now=now)


def fires(client: Any, name: str, *, limit: int = 20, offset: int = 0) -> list[FireView]:
    """Recent fires of ``name``, newest first, with their runs' status, duration and cost."""
    client.metadata.schedules.get(name)
    return client.metadata.schedules.fires.history(name, limit=limit, offset=offset)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SyncReport:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


def sync_config(client: Any, *, now: float | None = None) -> SyncReport:
    """Make the store's ``config`` schedules match ``loopml.toml``.

    A table that is not valid is reported (and logged) and leaves that schedule as it was;
    a loopml.toml that does not parse leaves every schedule as it was.
    """
    from loopml.config import load_settings

    settings = client.settings
    try:
        tables = load_settings(settings.root).config.schedules if settings.has_config else {}
    except InvalidParameterError as exc:
        log.error("loopml.toml not applied: %s", exc)
        return SyncReport(errors=(str(exc),))
    store = client.metadata.schedules
    stored = {r.name: r for r in store.list()}
    added: list[str] = []
    changed: list[str] = []
    removed: list[str] = []
    errors: list[str] = []
    at = _now(now)
    for name, table in tables.items():
        old = stored.get(name)
        try:
            record = make_record(
                name,
                pipeline=table.pipeline,
                cron=table.cron,
                timezone=table.timezone,
                params=dict(table.params),
                timeout=table.timeout,
                retries=table.retries,
                backoff=table.backoff,
                catchup=table.catchup,
                overlap=table.overlap,
                paused=table.paused,
                source="config",
                by="loopml.toml",
            )
        except LoopmlError as exc:
            errors.append(f"[schedules.{name}]: {exc}")
            log.error("loopml.toml [schedules.%s] not applied: %s", name, exc)
            continue
        unchanged = old is not None and replace(record, paused=old.paused).definition() == (
            old.definition()
        )
        if unchanged:
            continue  # the table did not change: a pause or resume from the CLI stands
        try:
            store.put(record, now=at)
        except ConflictError:  # another scheduler created it at the same moment
            continue
        (added if old is None else changed).append(name)
    for name, old in stored.items():
        if old.source == "config" and name not in tables:
            try:
                store.remove(name, now=at)
            except NotFoundError:  # another scheduler removed it first
                continue
            removed.append(name)
    return SyncReport(tuple(added), tuple(changed), tuple(removed), tuple(errors))
