"""Pipelines: the project's pipelines with their parameters and last run; trigger a run.

A triggered run starts in a child process (``scheduler/launch.py``, what the scheduler
uses), so a pipeline that crashes or hangs never takes the server with it. The parameters
are checked here first with the pipeline's own ``bind`` (a bad one is a 400 naming it,
and no process starts); the answer is a 202 once the run exists in the store.
"""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

from fastapi import HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from loopml.server.api.deps import Caller, Client
from loopml.server.api.limits import capped_router
from loopml.server.errors import ErrorBody

router = capped_router(tags=["pipelines"])

#: Seconds a triggered run's process gets to create its run (import the project, bind).
START_TIMEOUT_S = 120.0
PipelineName = Annotated[str, Path(max_length=200)]


class ParamOut(BaseModel):
    name: str
    type: str
    required: bool
    default: Any


class LastRun(BaseModel):
    id: str
    label: str
    status: str
    started_at: float
    duration_s: float | None
    cost: float | None


class PipelineOut(BaseModel):
    name: str
    description: str
    params: list[ParamOut]
    last_run: LastRun | None


class TriggerIn(BaseModel):
    """What ``POST /pipelines/{name}/runs`` takes."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(
        default_factory=dict,
        max_length=1000,
        description="Parameter values by name, typed like `loopml run -p` values.",
    )
    no_cache: bool = Field(False, description="Run every step, ignoring cached results.")
    timeout: float | None = Field(
        None, gt=0, le=30 * 86400, description="Seconds after which the run is stopped (failed)."
    )


class TriggerOut(BaseModel):
    run: str
    url: str
    pipeline: str
    triggered_by: str


def _last_run(client: Any, name: str) -> LastRun | None:
    quoted = f'"{name}"' if "'" in name else f"'{name}'"
    found = client.metadata.search(f"pipeline = {quoted}", "started desc", limit=1)
    if not found:
        return None
    r = found[0]
    return LastRun(
        id=r.id,
        label=r.label,
        status=str(r.status),
        started_at=r.started_at,
        duration_s=r.duration_s,
        cost=r.cost,
    )


@router.get("/pipelines", summary="The project's pipelines")
def list_pipelines(client: Client) -> list[PipelineOut]:
    """Each pipeline with its parameters (type, default) and its last run's status,
    duration and cost."""
    import inspect

    from loopml.pipelines.discovery import describe, load_pipelines

    found = load_pipelines(client.settings)
    return [
        PipelineOut(
            name=name,
            description=(inspect.getdoc(p.fn) or "").split("\n\n")[0],
            params=[ParamOut(**d) for d in _jsonable(describe(p))],
            last_run=_last_run(client, name),
        )
        for name, p in sorted(found.items())
    ]


def _jsonable(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Defaults as JSON values (a Path or a tuple default is shown as text or a list)."""
    for d in params:
        try:
            json.dumps(d["default"])
        except (TypeError, ValueError):
            d["default"] = str(d["default"])
    return params


def assignment(name: str, value: Any) -> str:
    """A JSON value as the ``KEY=VALUE`` text the child parses with the pipeline's types."""
    if isinstance(value, str):
        text = value
    elif value is None:
        text = "none"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        text = json.dumps(value)
    return f"{name}={text}"


@router.post(
    "/pipelines/{name}/runs",
    summary="Start a run of a pipeline",
    status_code=202,
    responses={
        202: {"description": "The run exists and is running; poll its URL."},
        504: {
            "model": ErrorBody,
            "description": "The run's process did not create its run in time and was stopped.",
        },
    },
)
def trigger(name: PipelineName, body: TriggerIn, client: Client, caller: Caller) -> JSONResponse:
    """Start a run in a child process; answers once the run exists, with its id and URL.

    The run is tagged ``triggered_by`` with the caller (``token:NAME``). An unknown
    pipeline is a 404 listing the known ones; a bad parameter a 400 naming it.
    """
    from loopml.pipelines.discovery import find_pipeline
    from loopml.scheduler.launch import JobSpec, launch

    target = find_pipeline(client.settings, name)
    target.bind(**body.params)  # InvalidParameterError names the parameter: 400
    spec = JobSpec(
        pipeline=name,
        params=[assignment(k, v) for k, v in body.params.items()],
        tags={"triggered_by": caller.audit_name},
        timeout_s=body.timeout,
        no_cache=body.no_cache,
    )
    launched = launch(client.settings, spec)
    # Reap the child when it ends (no zombie), whoever asks about the run afterwards.
    threading.Thread(target=launched.wait, name="loopml-run-reaper", daemon=True).start()
    run_id = launched.wait_started(START_TIMEOUT_S)
    if run_id is None:
        if launched.error is not None:
            raise HTTPException(400, f"Pipeline {name!r} could not start: {launched.error}")
        if launched.poll() is None:
            launched.kill()
            raise HTTPException(
                504,
                f"Pipeline {name!r} did not create its run within {START_TIMEOUT_S:g} s "
                "(importing the project took too long?); its process was stopped.",
            )
        raise HTTPException(
            500,
            f"The process of pipeline {name!r} exited (code {launched.poll()}) before creating "
            "its run; run `loopml run " + name + "` in the project to see why.",
        )
    out = TriggerOut(
        run=run_id, url=f"/api/runs/{run_id}", pipeline=name, triggered_by=caller.audit_name
    )
    return JSONResponse(out.model_dump(), 202, headers={"Location": out.url})
