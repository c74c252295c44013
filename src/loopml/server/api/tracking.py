"""Tracking over REST: create a run, log batches to it, keep it alive, end it.

For clients that cannot reach the store themselves (another network, another language).
The same rules as logging from Python hold: every point is checked by the store's own
``check_point``; a run holds a lease, so only the client holding the run's ``lease`` token
(answered by ``POST /runs``) may log to it, heartbeat it or end it; a run whose lease ran
out (no heartbeat for ``lease_s``) is marked crashed and refuses further writes (409).

``POST /runs/{run}/log`` with an ``Idempotency-Key`` header writes the batch and stores the
key and the answer in one transaction (``store/idempotency.py``): a retry of a batch whose
answer was lost gets the first answer and writes nothing. Deadlocks and serialization
failures are retried inside the server (``Database.write``), never answered as a 5xx.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from loopml.errors import ConflictError, InvalidParameterError, LeaseLostError, NotFoundError
from loopml.server.api.deps import Caller, Client
from loopml.server.api.limits import KEY_SCHEMA, RunRef, capped_router
from loopml.store.metrics import INT64_MAX, INT64_MIN
from loopml.store.status import FINAL_RUN_STATUSES, RunStatus

router = capped_router(tags=["tracking"])

#: Points per batch: bounds the work of one request (the body cap bounds its bytes).
MAX_POINTS = 100_000
MAX_KEYS = 1_000
DEFAULT_LEASE_S = 60.0
_HEX = set("0123456789abcdef")

#: A metric, param or tag name: documented as the store's ``check_key`` takes it, and
#: checked there (422 naming the key).
Key = Annotated[str, Field(json_schema_extra=KEY_SCHEMA)]
#: Text the store keeps as given: anything but NUL.
_Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
#: A param or tag value: a number, true/false, null, text without NUL, or a list or object
#: (stored as its text).
Value = _Text | int | float | bool | None | list[Any] | dict[str, Any]


def _keys_by_name(schema: dict[str, Any]) -> None:
    """State the key rules as ``propertyNames`` (pydantic would write a key pattern as
    ``patternProperties``, which in JSON Schema lets any other key through)."""
    for value in schema.pop("patternProperties", {}).values():
        schema["additionalProperties"] = value
    schema["propertyNames"] = KEY_SCHEMA


def _named_values(description: str) -> Any:
    return Field(
        default_factory=dict,
        max_length=MAX_KEYS,
        description=description,
        json_schema_extra=_keys_by_name,
    )


#: The statuses a run can end with (every status but running).
FinalRunStatus = StrEnum(  # type: ignore[misc]
    "FinalRunStatus", {s.name: s.value for s in FINAL_RUN_STATUSES}
)


class RunIn(BaseModel):
    """What ``POST /runs`` takes."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(
        "remote", max_length=200, description="Groups runs (numbered per pipeline)."
    )
    name: str | None = Field(None, max_length=200, description="Default `PIPELINE#N`.")
    params: dict[Key, Value] = _named_values("Param name -> value.")
    tags: dict[Key, Value] = _named_values("Tag name -> value.")
    lease_s: float = Field(
        DEFAULT_LEASE_S,
        ge=5,
        le=86400,
        description="Seconds without a heartbeat (or a log) after which the run is marked "
        "crashed; heartbeat at least every lease_s / 2.5.",
    )
    host: str | None = Field(
        None,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="The machine name where the client runs (recorded, never contacted).",
    )


class RunCreated(BaseModel):
    id: str
    label: str
    number: int
    lease: str
    lease_s: float
    url: str


class PointIn(BaseModel):
    key: Key
    value: float | None = Field(description="A number; null stores NaN.")
    step: int = Field(
        0,
        # Checked by the store's check_point, which names the metric.
        json_schema_extra={"minimum": INT64_MIN, "maximum": INT64_MAX},
        description="A 64-bit integer.",
    )
    timestamp: float | None = Field(
        None, allow_inf_nan=False, description="Unix seconds; default: when received."
    )


class LogIn(BaseModel):
    """A batch: points, params and tags of one run, stored together or not at all."""

    model_config = ConfigDict(extra="forbid")

    lease: str = Field(max_length=64, description="The run's lease token from POST /runs.")
    metrics: list[PointIn] = Field(default_factory=list, max_length=MAX_POINTS)
    params: dict[Key, Value] = _named_values("Param name -> value.")
    tags: dict[Key, Value] = _named_values("Tag name -> value.")


class Logged(BaseModel):
    run: str
    metrics: int
    params: int
    tags: int


class LeaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease: str = Field(max_length=64)


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease: str = Field(max_length=64)
    status: FinalRunStatus = Field(
        FinalRunStatus(RunStatus.SUCCEEDED.value), description="A final status."
    )
    error: _Text | None = Field(None, max_length=10_000)


class RunState(BaseModel):
    run: str
    status: str


def _invalid(loc: list[str | int], exc: InvalidParameterError) -> HTTPException:
    return HTTPException(422, [{"loc": loc, "msg": str(exc), "type": "value_error"}])


def _run_id(client: Any, ref: str) -> str:
    if len(ref) == 32 and set(ref) <= _HEX:
        return ref
    return str(client.metadata.runs.resolve(ref))


def _refused(client: Any, run_id: str, wanted: str) -> ConflictError:
    record = client.metadata.runs.get(run_id)
    if record.status != RunStatus.RUNNING:
        return LeaseLostError(
            f"Run {record.label} is {record.status}, not running, so it cannot {wanted}"
            + (f" ({record.error})." if record.error else ".")
        )
    return ConflictError(
        f"Run {record.label}: the lease token is not this run's; send the `lease` that "
        "POST /api/runs answered for it."
    )


@router.post("/runs", summary="Create a run to log to", status_code=201)
def create_run(body: RunIn, client: Client, caller: Caller, request: Request) -> RunCreated:
    """A running run, owned by the caller through the ``lease`` token in the answer."""
    from loopml.store.metrics import param_row, tag_row

    for where, check, values in (("params", param_row, body.params), ("tags", tag_row, body.tags)):
        for key, value in values.items():
            try:
                check(key, value)
            except InvalidParameterError as exc:
                raise _invalid(["body", where, key], exc) from None
    peer = request.client.host if request.client is not None else "unknown"
    new, lease = client.metadata.runs.create(
        pipeline=body.pipeline,
        name=body.name,
        kind="adhoc",
        host=body.host or peer,
        pid=0,
        executor="rest",
        owner=None,  # elsewhere: only the lease says whether it is alive
        lease_s=body.lease_s,
    )
    tags = {**body.tags, "created_by": caller.audit_name}
    client.metadata.metrics.write_batch(new.id, (), body.params, tags)
    return RunCreated(
        id=new.id,
        label=new.label,
        number=new.number,
        lease=lease,
        lease_s=body.lease_s,
        url=f"/api/runs/{new.id}",
    )


@router.post(
    "/runs/{run}/log",
    summary="Log a batch of metrics, params and tags",
    responses={
        200: {"description": "Stored (header `Idempotent-Replayed: true` on a retry's answer)."}
    },
)
def log_batch(
    run: RunRef,
    body: LogIn,
    client: Client,
    idempotency_key: Annotated[
        str | None,
        # What check_idempotency_key takes, published so clients (and R18) know it.
        Header(
            min_length=1,
            max_length=200,
            pattern=r"^[ -~]+$",
            description="1 to 200 printable ASCII characters, e.g. a UUID per batch.",
        ),
    ] = None,
) -> JSONResponse:
    """Store the batch in one transaction. With ``Idempotency-Key``, a retry is answered
    from the first request and writes nothing; the same key with another body is a 409."""
    from loopml.store.metrics import check_point, param_row, tag_row

    run_id = _run_id(client, run)
    now = time.time()
    points = []
    for i, p in enumerate(body.metrics):
        value = math.nan if p.value is None else p.value
        try:
            points.append(
                check_point(p.key, value, p.step, now if p.timestamp is None else p.timestamp)
            )
        except InvalidParameterError as exc:
            raise _invalid(["body", "metrics", i], exc) from None
    for where, check, values in (("params", param_row, body.params), ("tags", tag_row, body.tags)):
        for key, v in values.items():
            try:
                check(key, v)
            except InvalidParameterError as exc:
                raise _invalid(["body", where, key], exc) from None
    batch = client.metadata.metrics.batch_writer(
        run_id, points, body.params, body.tags, guarded=False
    )
    answer = Logged(
        run=run_id, metrics=len(points), params=len(body.params), tags=len(body.tags)
    ).model_dump()

    def write(tx: Any) -> dict[str, Any]:
        row = tx.one("SELECT status, lease_token FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise NotFoundError(f"No run with id {run_id!r}.")
        if row[0] != RunStatus.RUNNING or row[1] != body.lease:
            raise _Refused()
        batch(tx)
        return answer

    try:
        if idempotency_key is None:
            client.metadata.db.write(write, attempts=20)
            return JSONResponse(answer)
        from loopml.store.idempotency import Idempotency

        digest = hashlib.sha256(
            json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
        ).hexdigest()
        stored, replayed = Idempotency(client.metadata.db).write_once(
            idempotency_key, f"log:{run_id}", digest, write
        )
    except _Refused:
        raise _refused(client, run_id, "take writes") from None
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(stored, headers=headers)


class _Refused(Exception):
    """The run is not running, or the lease is not its own (raised inside the transaction)."""


@router.post("/runs/{run}/heartbeat", summary="Extend a run's lease")
def heartbeat(run: RunRef, body: LeaseIn, client: Client) -> RunState:
    """Keep the run alive; 409 once it was marked crashed (its lease ran out) or ended."""
    run_id = _run_id(client, run)
    if not client.metadata.runs.heartbeat(run_id, body.lease):
        raise _refused(client, run_id, "be kept alive")
    return RunState(run=run_id, status=RunStatus.RUNNING)


@router.post("/runs/{run}/end", summary="End a run with a final status")
def end_run(run: RunRef, body: EndIn, client: Client) -> RunState:
    """Move the run to ``status`` (default succeeded). Ending it again with the same status
    answers the same (a retry is safe); another status is a 409."""
    status = RunStatus(body.status.value)
    run_id = _run_id(client, run)
    if not client.metadata.runs.finish(run_id, body.lease, status, error=body.error):
        record = client.metadata.runs.get(run_id)
        if record.status != status or not _lease_is(client, run_id, body.lease):
            raise _refused(client, run_id, f"end as {status.value}")
    return RunState(run=run_id, status=status)


def _lease_is(client: Any, run_id: str, lease: str) -> bool:
    row = client.metadata.db.read(
        lambda tx: tx.one("SELECT lease_token FROM runs WHERE id = ?", (run_id,))
    )
    return row is not None and row[0] == lease
