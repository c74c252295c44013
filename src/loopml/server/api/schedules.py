"""Schedules: list and show them with their fires; pause, resume, run now; create, remove.

The same functions as ``loopml schedules`` and ``loopml schedule …``
(``loopml.scheduler.schedules``), with the caller's audit name (``token:NAME``) as ``by``.
Pausing, resuming and run-now need the ``writer`` role; creating and removing a schedule
need ``admin``. Schedules declared in ``loopml.toml`` are changed by editing that file:
creating one of their names or removing one is a 409 that says so.

Reads do not apply ``loopml.toml`` (a GET never writes): the scheduler of ``loopml
server`` applies it at every tick.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopml.server.api.deps import Caller, Client
from loopml.server.api.limits import Name, capped_router
from loopml.server.pages import Page, Paging, page, window

router = capped_router(tags=["schedules"])
ADMIN = {"x-role": "admin"}


class ScheduleOut(BaseModel):
    """A schedule with its next fire time and its last finished fire."""

    name: str
    pipeline: str
    cron: str
    timezone: str
    params: dict[str, Any]
    timeout_s: float | None
    retries: int
    backoff_s: float
    catchup: Literal["once", "skip", "all"]
    overlap: Literal["wait", "skip", "allow"] = Field(
        description="A fire due while the previous one runs: `wait` for it, `skip`, `allow`."
    )
    paused: bool
    source: Literal["cli", "config"] = Field(
        description="`config`: declared in loopml.toml (edit the file to change it)."
    )
    next_fire: str | None = Field(description="UTC, ISO 8601; null while paused.")
    last_status: str | None = Field(description="The last fire that ran: its status.")
    last_due: str | None
    last_run_id: str | None
    last_duration_s: float | None
    last_cost: float | None
    updated_at: str | None
    updated_by: str = Field(description="Who changed it last (`token:NAME`, `user@host`).")


class FireOut(BaseModel):
    """One fire of a schedule (a due time) and what its run recorded."""

    id: int
    schedule: str
    due: str | None = Field(description="The due time, UTC, ISO 8601.")
    kind: Literal["cron", "catchup", "manual"]
    status: str = Field(description="pending, running, succeeded, failed, skipped or crashed.")
    attempt: int
    run_id: str | None
    started: str | None
    ended: str | None
    error: str | None = Field(description="Why it failed or was skipped.")
    requested_by: str | None = Field(description="Who asked for a manual (run-now) fire.")
    run_status: str | None
    duration_s: float | None
    cost: float | None


class ScheduleIn(BaseModel):
    """What ``POST /schedules`` takes (the options of ``loopml schedule add``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="Letters, digits, '.', '_' and '-', at most 100 characters.",
    )
    pipeline: str = Field(min_length=1, max_length=200)
    cron: str = Field(
        min_length=1,
        max_length=200,
        description="5 fields (minute hour day month weekday), or 6 with seconds first.",
    )
    timezone: str = Field("UTC", max_length=64, description="An IANA time zone.")
    params: dict[str, Any] = Field(default_factory=dict, max_length=1000)
    timeout: str | float | None = Field(
        None, description="Stop the run after this long: '90s', '30m', '2h' or seconds."
    )
    retries: int = Field(0, ge=0, le=100)
    backoff: str | float = Field("60s", description="Wait before a retry (doubles each time).")
    catchup: Literal["once", "skip", "all"] = "once"
    overlap: Literal["wait", "skip", "allow"] = Field(
        "wait",
        description="A fire due while the previous one still runs: `wait` (start it when "
        "that one ends), `skip` (record it skipped), `allow` (run both).",
    )
    paused: bool = False
    replace: bool = Field(False, description="Change the schedule if it exists.")


class Removed(BaseModel):
    name: str
    removed: bool


def _out(info: Any) -> ScheduleOut:
    return ScheduleOut.model_validate(info.to_json())


@router.get("/schedules", summary="List schedules")
def list_schedules(client: Client, paging: Paging) -> Page[ScheduleOut]:
    """Each schedule by name: cron, time zone, pipeline and parameters, paused or not, where
    it was declared, its next fire time, and its last fire's status, duration, cost and run."""
    from loopml.scheduler import schedules as lib

    found = lib.list_schedules(client, sync=False)
    return window([_out(i) for i in found], paging)


@router.get("/schedules/{name}", summary="One schedule")
def get_schedule(name: Name, client: Client) -> ScheduleOut:
    from loopml.scheduler import schedules as lib

    return _out(lib.get(client, name))


@router.get("/schedules/{name}/fires", summary="A schedule's fires, newest due time first")
def list_fires(name: Name, client: Client, paging: Paging) -> Page[FireOut]:
    """Due time, kind (cron, catchup, manual), status, attempt, run, error, start and end."""
    from loopml.scheduler import schedules as lib

    views = lib.fires(client, name, limit=paging.fetch, offset=paging.offset)
    return page([FireOut.model_validate(lib.fire_json(v)) for v in views], paging)


@router.post("/schedules/{name}/pause", summary="Pause a schedule")
def pause(name: Name, client: Client, caller: Caller) -> ScheduleOut:
    """No fire until it is resumed; due times while paused are not caught up."""
    from loopml.scheduler import schedules as lib

    record = lib.pause(client, name, by=caller.audit_name)
    return _out(lib.info(client, record))


@router.post("/schedules/{name}/resume", summary="Resume a schedule")
def resume(name: Name, client: Client, caller: Caller) -> ScheduleOut:
    """Fires again from its next due time on."""
    from loopml.scheduler import schedules as lib

    record = lib.resume(client, name, by=caller.audit_name)
    return _out(lib.info(client, record))


@router.post(
    "/schedules/{name}/run-now",
    summary="Fire a schedule now",
    status_code=202,
    responses={202: {"description": "The fire is pending; a scheduler starts it."}},
)
def run_now(name: Name, client: Client, caller: Caller) -> FireOut:
    """A ``manual`` fire due now, outside the cron (paused or not); the next scheduler tick
    starts it. Poll ``GET /schedules/{name}/fires`` for its run."""
    from loopml.scheduler import schedules as lib
    from loopml.store.fires import FireView

    fire = lib.run_now(client, name, by=caller.audit_name)
    return FireOut.model_validate(lib.fire_json(FireView(fire, None, None, None, None)))


@router.post(
    "/schedules", summary="Create a schedule (admin)", status_code=201, openapi_extra=ADMIN
)
def create(body: ScheduleIn, client: Client, caller: Caller) -> ScheduleOut:
    """Checks the pipeline and its parameters first (400 naming the problem). An existing
    name is a 409 unless ``replace``; a schedule of loopml.toml is always a 409."""
    from loopml.scheduler import schedules as lib

    record = lib.make_record(
        body.name,
        pipeline=body.pipeline,
        cron=body.cron,
        timezone=body.timezone,
        params=body.params,
        timeout=body.timeout,
        retries=body.retries,
        backoff=body.backoff,
        catchup=body.catchup,
        overlap=body.overlap,
        paused=body.paused,
        by=caller.audit_name,
    )
    stored = lib.add(client, record, replace=body.replace)
    return _out(lib.info(client, stored))


@router.delete("/schedules/{name}", summary="Remove a schedule (admin)", openapi_extra=ADMIN)
def remove(name: Name, client: Client, caller: Caller) -> Removed:
    """Its fires not started yet never start (recorded skipped); its history stays. A
    schedule of loopml.toml is a 409: remove its table from the file instead."""
    from loopml.scheduler import schedules as lib

    removed = lib.remove(client, name, by=caller.audit_name)
    return Removed(name=removed.name, removed=True)
