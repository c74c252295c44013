"""``/models``: the model registry; ``/models/<name>``: versions, aliases, the alias history,
and the Promote and Rollback buttons.

The buttons call the library functions the CLI (``loopml promote``, ``loopml rollback``) and
the REST API (``server/api/promotions.py``) call, with the same audit (``token:NAME``):

- **Promote** is two steps. ``GET /models/<name>/promote?version=N&alias=A`` runs the gates
  as a dry run and shows their table, with a Confirm button only when every gate passes;
  ``POST /models/<name>/promote`` runs the gates again on the server and moves the alias only
  if they pass (409 and the gate table otherwise: nothing moved).
- **Force** past failing gates needs the admin role and a reason (as in the API), through
  ``POST /models/<name>/force``; the history marks the move as forced.
- **Rollback** gives an alias back to the version it held before (no gates, recorded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import HTMLResponse, Response

from loopml.errors import ConflictError
from loopml.server.api.limits import ALIAS_PATTERN, MAX_VERSION, Name
from loopml.server.auth import Principal
from loopml.server.ui import page_router, session
from loopml.server.ui.render import render, url
from loopml.store.tokens import Role, role_allows

if TYPE_CHECKING:
    from loopml.registry.promotion import Promotion
    from loopml.store.models import ModelVersion
    from loopml.tracking.client import Client

router = page_router()

#: How many metrics a version shows in the tables (plain names first: rmse before diabetes.rmse).
HEADLINE_METRICS = 4
DEFAULT_ALIAS = "production"

Version = Annotated[int, Form(ge=0, le=MAX_VERSION)]
Alias = Annotated[str, Form(max_length=64, pattern=ALIAS_PATTERN)]
Reason = Annotated[str, Form(max_length=2000)]


@dataclass(frozen=True)
class Figure:
    """A metric of a version as the tables show it: value and, when logged, its interval."""

    name: str
    value: float
    low: float | None
    high: float | None


def headline(metrics: dict[str, float], limit: int = HEADLINE_METRICS) -> list[Figure]:
    """The metrics worth a column: plain names (``rmse``) before namespaced ones
    (``diabetes.rmse``), interval bounds (``*.low``/``*.high``) folded into their metric."""
    bounds = (".low", ".high")
    names = [k for k in metrics if not k.endswith(bounds)]
    names.sort(key=lambda k: ("." in k, list(metrics).index(k)))
    figures = []
    for name in names[:limit]:
        # An evaluation logs "suite.rmse.low" beside "rmse": find the bounds of either spelling.
        low = high = None
        for key in [name, *(k[: -len(".low")] for k in metrics if k.endswith("." + name + ".low"))]:
            if f"{key}.low" in metrics and f"{key}.high" in metrics:
                low, high = metrics[f"{key}.low"], metrics[f"{key}.high"]
                break
        figures.append(Figure(name, metrics[name], low, high))
    return figures


def _versions(client: Client, name: str) -> list[ModelVersion]:
    """The versions of ``name``, oldest first; NotFoundError (a 404 page) for no such model."""
    found: list[ModelVersion] = client.model_versions(name)
    if not found:
        client.model_version(name)  # raises "No model named …"
    return found


def promoter(request: Request) -> Principal:
    """The promote page's dependency: the gate check may evaluate a version on the gate's
    suite, so, like the API's dry run, it needs a signed-in writer (401/403 otherwise)."""
    who = session.principal(request)
    if who is None:
        raise HTTPException(
            401, "Sign in with a writer token to check a promotion's gates and promote."
        )
    if not role_allows(who.role, Role.WRITER):
        raise HTTPException(
            403, f"Token {who.name!r} has the {who.role} role; promoting needs writer."
        )
    return who


@router.get("/models")
def models_page(request: Request) -> HTMLResponse:
    client: Client = request.app.state.loopml.client
    rows = []
    for latest in client.models():
        versions = client.model_versions(latest.name)
        rows.append(
            {
                "latest": latest,
                "count": len(versions),
                "first": versions[0].created_at if versions else latest.created_at,
                "aliases": client.model_aliases(latest.name),
                "metrics": headline(latest.metrics),
            }
        )
    return render(request, "models/list.html", title="Models", models=rows)


@router.get("/models/{name}")
def model_page(
    request: Request,
    name: Name,
    done: Annotated[str, Query(max_length=20)] = "",
    alias: Annotated[str, Query(max_length=64)] = "",
    version: Annotated[int | None, Query(ge=0, le=MAX_VERSION)] = None,
) -> HTMLResponse:
    return _model(request, name, notice=_notice(done, name, alias, version))


def _notice(done: str, name: str, alias: str, version: int | None) -> str | None:
    at = f"{name}@{version}" if version is not None else "its previous version"
    return {
        "promoted": f"Moved {name}@{alias} to {at}.",
        "forced": f"Moved {name}@{alias} to {at}, past failing gates (forced; recorded).",
        "rolledback": f"Rolled {name}@{alias} back to {at}.",
    }.get(done)


def _model(
    request: Request,
    name: str,
    *,
    notice: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    client: Client = request.app.state.loopml.client
    versions = _versions(client, name)
    aliases = client.model_aliases(name)
    history = client.alias_history(name)
    moved = {e.alias: e.at for e in history if e.alias in aliases}
    rows = [
        {
            "v": v,
            "metrics": headline(v.metrics),
            "inputs": [c.get("name", "?") for c in (v.input_schema or {}).get("inputs", [])],
            "evaluations": client.model_evaluations(v.digest),
        }
        for v in reversed(versions)
    ]
    return render(
        request,
        "models/detail.html",
        title=f"Model {name}",
        name=name,
        versions=rows,
        aliases=aliases,
        moved=moved,
        history=list(reversed(history)),
        default_alias=DEFAULT_ALIAS,
        notice=notice,
        problem=problem,
        status_code=status_code,
    )


@router.get("/models/{name}/promote", openapi_extra={"x-role": "writer"})
def promote_page(
    request: Request,
    name: Name,
    who: Annotated[Principal, Depends(promoter)],
    version: Annotated[int, Query(ge=0, le=MAX_VERSION)],
    alias: Annotated[str, Query(max_length=64)] = DEFAULT_ALIAS,
) -> HTMLResponse:
    """The gates of ``alias`` for ``version``, checked as a dry run: nothing moves here."""
    from loopml.registry.promotion import promote

    client: Client = request.app.state.loopml.client
    _versions(client, name)
    check = promote(name, version, to=alias, dry_run=True, by=who.audit_name, client=client)
    return _promotion(request, check)


def _promotion(
    request: Request, promotion: Promotion, *, refused: str | None = None, status_code: int = 200
) -> HTMLResponse:
    return render(
        request,
        "models/promote.html",
        title=f"Promote {promotion.version.label} to {promotion.alias}",
        p=promotion,
        refused=refused,
        status_code=status_code,
    )


@router.post("/models/{name}/promote")
def promote(
    request: Request,
    name: Name,
    who: Annotated[Principal, Depends(session.writer)],
    version: Version,
    alias: Alias,
    reason: Reason = "",
) -> Response:
    """Check the gates again (the page may be stale) and move the alias only if they pass."""
    return _move(request, name, who, version, alias, reason, force=False)


@router.post("/models/{name}/force")
def force(
    request: Request,
    name: Name,
    who: Annotated[Principal, Depends(session.admin)],
    version: Version,
    alias: Alias,
    reason: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    """Move the alias past failing gates: admin only, with a reason for the history."""
    return _move(request, name, who, version, alias, reason, force=True)


def _move(
    request: Request,
    name: str,
    who: Principal,
    version: int,
    alias: str,
    reason: str,
    *,
    force: bool,
) -> Response:
    from loopml.registry.promotion import PromotionRefusedError, promote

    client: Client = request.app.state.loopml.client
    _versions(client, name)
    try:
        done = promote(
            name,
            version,
            to=alias,
            force=force,
            reason=reason,
            by=who.audit_name,
            client=client,
        )
    except PromotionRefusedError as exc:
        return _promotion(request, exc.promotion, refused=str(exc), status_code=409)
    except ConflictError as exc:  # another promotion moved the alias while the gates ran
        return _model(request, name, problem=str(exc), status_code=409)
    word = "forced" if done.forced else "promoted"
    target = url(f"/models/{name}", done=word, alias=alias, version=done.version.number)
    return RedirectResponse(target, status_code=303)


@router.post("/models/{name}/rollback")
def rollback(
    request: Request,
    name: Name,
    who: Annotated[Principal, Depends(session.writer)],
    alias: Alias,
    reason: Reason = "",
) -> Response:
    """Give ``alias`` back to the version it held before (no gates; recorded as the token)."""
    from loopml.errors import NotFoundError
    from loopml.registry.promotion import rollback as rollback_alias

    client: Client = request.app.state.loopml.client
    _versions(client, name)
    try:
        event = rollback_alias(name, alias=alias, reason=reason, by=who.audit_name, client=client)
    except (NotFoundError, ConflictError) as exc:  # nothing earlier, or it moved meanwhile
        return _model(request, name, problem=str(exc), status_code=409)
    target = url(f"/models/{name}", done="rolledback", alias=alias, version=event.to_number)
    return RedirectResponse(target, status_code=303)
