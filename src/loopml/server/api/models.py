"""The model registry, read side: models, versions, aliases and the alias audit trail.

Moving aliases (promote, rollback) is ``promotions.py``; these routes only read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from loopml.server.api.deps import Client
from loopml.server.api.evaluations import EvaluationOut, evaluation_out
from loopml.server.api.limits import CappedRoute, Name
from loopml.server.pages import Page, Paging, page, window
from loopml.store.validate import versioned_name

router = APIRouter(tags=["models"], route_class=CappedRoute)

_EXAMPLE = "'churn'"
VERSION_PATTERN = r"^(latest|[0-9]{1,18}|[A-Za-z][A-Za-z0-9_-]{0,63})$"  # an alias: check_alias


class ModelVersionOut(BaseModel):
    name: str
    version: int
    ref: str
    digest: str
    run_id: str | None
    source: str
    library: str
    library_version: str
    datasets: list[str]
    aliases: list[str]
    metrics: dict[str, float | None]
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None
    description: str
    tags: dict[str, str]
    created_by: str
    created_at: float


def version_out(v: Any) -> ModelVersionOut:
    return ModelVersionOut(
        name=v.name,
        version=v.number,
        ref=v.label,
        digest=v.digest,
        run_id=v.run_id,
        source=v.source,
        library=v.library,
        library_version=v.library_version,
        datasets=list(v.datasets),
        aliases=list(v.aliases),
        metrics=dict(v.metrics),
        input_schema=v.input_schema,
        output_schema=v.output_schema,
        description=v.description,
        tags=dict(v.tags),
        created_by=v.created_by,
        created_at=v.created_at,
    )


class ModelOut(BaseModel):
    name: str
    latest: ModelVersionOut
    aliases: dict[str, int]


@router.get("/models", summary="Registered models: newest version and every alias")
def list_models(client: Client, paging: Paging) -> Page[ModelOut]:
    found = client.models()[paging.offset : paging.offset + paging.fetch]
    items = [
        ModelOut(name=v.name, latest=version_out(v), aliases=client.model_aliases(v.name))
        for v in found
    ]
    return page(items, paging)


def _versions(client: Any, name: str) -> list[Any]:
    versioned_name("Model", name, _EXAMPLE)
    found = client.model_versions(name)
    if not found:
        client.model_version(name)  # raises "No model named …"
    return found  # type: ignore[no-any-return]


class ModelDetail(BaseModel):
    name: str
    aliases: dict[str, int]
    versions: Page[ModelVersionOut]


@router.get("/models/{name}", summary="A model's versions (oldest first) and aliases")
def get_model(client: Client, name: Name, paging: Paging) -> ModelDetail:
    versions = [version_out(v) for v in _versions(client, name)]
    return ModelDetail(
        name=name, aliases=client.model_aliases(name), versions=window(versions, paging)
    )


class ModelVersionDetail(ModelVersionOut):
    evaluations: list[EvaluationOut]


@router.get("/models/{name}/versions/{version}", summary="One model version")
def get_model_version(
    client: Client,
    name: Name,
    version: Annotated[
        str,
        Path(
            pattern=VERSION_PATTERN,
            max_length=100,
            description="A version number, `latest`, or an alias such as `production`.",
        ),
    ],
) -> ModelVersionDetail:
    """With the evaluations of its model artifact on every suite."""
    versioned_name("Model", name, _EXAMPLE)
    v = client.model_version(f"{name}@{version}")
    return ModelVersionDetail(
        **version_out(v).model_dump(),
        evaluations=[evaluation_out(e) for e in client.model_evaluations(v.digest)],
    )


@router.get("/models/{name}/aliases", summary="Alias -> version number, for one model")
def get_aliases(client: Client, name: Name) -> dict[str, int]:
    _versions(client, name)
    return client.model_aliases(name)


class AliasEventOut(BaseModel):
    id: int
    alias: str
    from_version: int | None
    to_version: int | None
    at: float
    by: str
    action: str
    forced: bool
    reason: str
    gates: list[dict[str, Any]]


@router.get("/models/{name}/history", summary="Every move of a model's aliases: the audit trail")
def alias_history(
    client: Client,
    name: Name,
    paging: Paging,
    alias: Annotated[
        str | None, Query(max_length=100, description="Only the moves of this alias.")
    ] = None,
) -> Page[AliasEventOut]:
    """Oldest first: who moved which alias from which version to which, when and why."""
    _versions(client, name)
    events = [
        AliasEventOut(
            id=e.id,
            alias=e.alias,
            from_version=e.from_number,
            to_version=e.to_number,
            at=e.at,
            by=e.by,
            action=e.action,
            forced=e.forced,
            reason=e.reason,
            gates=e.gates,
        )
        for e in client.alias_history(name, alias)
    ]
    return window(events, paging)
