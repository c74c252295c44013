"""Tokens (admin only): list, create (the secret is in that one answer), revoke; and whoami.

The same functions as ``loopml token``; ``created_by`` is the creating token's audit name.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, Field

from loopml.server.api.deps import Caller, Client
from loopml.server.api.limits import capped_router
from loopml.store.tokens import TokenRecord

router = capped_router(tags=["tokens"])
ADMIN = {"x-role": "admin"}
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"

TokenName = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="Letters, digits, '.', '_' and '-', at most 100 characters.",
    ),
]


class TokenOut(BaseModel):
    """A token as stored: everything but the secret."""

    name: str
    role: Literal["reader", "writer", "admin"]
    created_at: float
    created_by: str
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None


class TokenIn(BaseModel):
    name: TokenName
    role: Literal["reader", "writer", "admin"]
    expires_in_s: int | None = Field(
        None,
        ge=60,
        le=100 * 365 * 86400,
        description="Refuse the token after this many seconds (default: never).",
    )


class TokenCreated(TokenOut):
    token: str = Field(description="The secret: shown in this answer only, never again.")


class WhoAmI(BaseModel):
    name: str = Field(description="The token's name, or 'anonymous' (loopback reads).")
    role: Literal["reader", "writer", "admin"]
    audit_name: str = Field(description="What audit records written for you carry.")


def token_out(record: TokenRecord) -> TokenOut:
    return TokenOut.model_validate(record.to_dict())


@router.get("/tokens", summary="List tokens (admin)", openapi_extra=ADMIN)
def list_tokens(client: Client) -> list[TokenOut]:
    return [token_out(r) for r in client.metadata.tokens.list()]


@router.post("/tokens", summary="Create a token (admin)", status_code=201, openapi_extra=ADMIN)
def create_token(client: Client, caller: Caller, body: TokenIn) -> TokenCreated:
    expires_at = None if body.expires_in_s is None else time.time() + body.expires_in_s
    record, secret = client.metadata.tokens.create(
        body.name, body.role, by=caller.audit_name, expires_at=expires_at
    )
    return TokenCreated(**token_out(record).model_dump(), token=secret)


@router.post(
    "/tokens/{name}/revoke",
    summary="Revoke a token (admin): its next request gets 401",
    openapi_extra=ADMIN,
)
def revoke_token(client: Client, name: Annotated[str, Path(pattern=NAME_PATTERN)]) -> TokenOut:
    return token_out(client.metadata.tokens.revoke(name))


@router.get("/whoami", summary="The caller's token name and role")
def whoami(caller: Caller) -> WhoAmI:
    return WhoAmI(name=caller.name, role=caller.role.value, audit_name=caller.audit_name)
