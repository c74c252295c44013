"""Promote and roll back: the same ``promote()``/``rollback()`` as the CLI, audited as the token.

A promotion runs the alias's gates from ``loopml.toml``; when one fails the answer is a 409
whose body holds every gate's row (gate, required, observed, passed) and nothing moves.
``force`` (past failing gates, with a reason) needs the admin role: it overrides the rules a
team set for its models, so a writer token alone may not. The alias history records
``token:NAME`` as who moved it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from loopml.server.api.deps import Caller, Client
from loopml.server.api.limits import ALIAS_PATTERN, MAX_VERSION, Name, capped_router
from loopml.store.models import RESERVED_ALIASES
from loopml.store.tokens import Role, role_allows

router = capped_router(tags=["models"])

#: A model version as ``promote()`` takes it: a number, ``latest``, or an alias (``@`` optional).
VERSION_TEXT = r"^@?(?:latest|[0-9]{1,18}|[A-Za-z][A-Za-z0-9_-]{0,63})$"


def _alias_field(description: str) -> Any:
    return Field(
        max_length=64,
        description=f"{description} A word of letters, digits, '_' and '-' starting with a "
        f"letter; {', '.join(map(repr, RESERVED_ALIASES))} is reserved.",
        # Documented here, checked by check_alias (400 naming the alias and the rule).
        json_schema_extra={"pattern": ALIAS_PATTERN, "not": {"enum": list(RESERVED_ALIASES)}},
    )


class PromoteIn(BaseModel):
    """What ``POST /models/{name}/promote`` takes."""

    model_config = ConfigDict(extra="forbid")

    version: (
        Annotated[int, Field(ge=0, le=MAX_VERSION)]
        | Annotated[str, Field(pattern=VERSION_TEXT, max_length=65)]
    ) = Field(description="A version number, `latest`, or an alias of the model (`staging`).")
    to: str = _alias_field("The alias to move, e.g. `production`.")
    reason: str = Field("", max_length=2000, description="Recorded in the alias history.")
    # Strict: a 0 or "no" is not taken for false (R18 negative data).
    force: StrictBool = Field(
        False, description="Move past failing gates (admin role, needs reason)."
    )
    dry_run: StrictBool = Field(False, description="Only evaluate the gates; move nothing.")


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str = _alias_field("The alias to give back, e.g. `production`.")
    reason: str = Field("", max_length=2000, description="Recorded in the alias history.")


class GateOut(BaseModel):
    gate: str
    required: str
    observed: str
    passed: bool


class PromotionOut(BaseModel):
    model: str
    alias: str
    version: int
    previous: int | None
    passed: bool
    moved: bool
    dry_run: bool
    forced: bool
    gates: list[GateOut]
    by: str | None


class AliasEventOut(BaseModel):
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    at: float
    by: str
    action: str
    reason: str


def _refused(detail: str, promotion: dict[str, Any]) -> JSONResponse:
    item = {"loc": ["body", "version"], "msg": detail, "type": "gates_failed"}
    return JSONResponse({"detail": [item], "promotion": promotion}, 409)


@router.post(
    "/models/{name}/promote",
    summary="Move an alias to a version through its gates",
    responses={409: {"description": "A gate failed (the body's `promotion.gates` has the table)"}},
)
def promote(name: Name, body: PromoteIn, client: Client, caller: Caller) -> Any:
    """Evaluate the gates of ``to`` for ``version`` and move the alias when they pass."""
    from loopml.registry.promotion import PromotionRefusedError
    from loopml.registry.promotion import promote as promote_version

    if body.force and not role_allows(caller.role, Role.ADMIN):
        raise HTTPException(
            403,
            f"Token {caller.name!r} has the {caller.role} role; a forced promotion (past "
            "failing gates) needs admin. Fix what the gates report, or ask an admin.",
        )
    try:
        promotion = promote_version(
            name,
            body.version,
            to=body.to,
            dry_run=body.dry_run,
            force=body.force,
            reason=body.reason,
            by=caller.audit_name,
            client=client,
        )
    except PromotionRefusedError as exc:
        return _refused(str(exc), {**exc.promotion.to_dict(), "by": None})
    return PromotionOut(
        **promotion.to_dict(), by=promotion.event.by if promotion.event is not None else None
    )


@router.post("/models/{name}/rollback", summary="Give an alias back to its previous version")
def rollback(name: Name, body: RollbackIn, client: Client, caller: Caller) -> AliasEventOut:
    """No gates: going back is always allowed, and recorded with the caller's name."""
    from loopml.registry.promotion import rollback as rollback_alias

    event = rollback_alias(
        name, alias=body.alias, reason=body.reason, by=caller.audit_name, client=client
    )
    return AliasEventOut(
        model=event.name,
        alias=event.alias,
        from_version=event.from_number,
        to_version=event.to_number,
        at=event.at,
        by=event.by,
        action=event.action,
        reason=event.reason,
    )
