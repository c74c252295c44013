"""Who is calling, and may they: bearer tokens with roles, checked on every ``/api`` route.

Each route needs a role: ``reader`` for GET, ``writer`` for the other methods, unless the
route says otherwise (``openapi_extra={"x-role": "admin"}``; the role is published in the
OpenAPI document too). The check is a dependency of the whole ``/api`` router, so a route
added later cannot forget it.

- **auth on** (``--auth``, and always off loopback): every route but ``/health`` needs a
  token of at least its role: 401 without one (or with an unknown, revoked or expired one),
  403 when the role is too low.
- **auth off** (loopback, the default): reads need no token; writes still do, so a web page
  in the user's browser can never change the store through the loopback port.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request

from loopml.store.tokens import Role, role_allows

ANONYMOUS = "anonymous"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a token's name and role, or the anonymous loopback reader."""

    name: str
    role: Role

    @property
    def audit_name(self) -> str:
        """What audit records carry: ``token:NAME``."""
        return f"token:{self.name}" if self.name != ANONYMOUS else ANONYMOUS


def required_role(request: Request) -> Role:
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    if "x-role" in extra:
        return Role(extra["x-role"])
    return Role.READER if request.method in SAFE_METHODS else Role.WRITER


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise HTTPException(
            401,
            "The Authorization header must be 'Bearer <token>' (create a token with "
            "`loopml token create NAME --role reader`).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return value.strip()


def authorize(request: Request) -> Principal:
    """The ``/api`` router's dependency: the caller, or a 401/403."""
    state = request.app.state.loopml
    needed = required_role(request)
    secret = _bearer(request)
    if secret is None:
        if not state.auth and needed == Role.READER:
            principal = Principal(ANONYMOUS, Role.READER)
            request.state.principal = principal
            return principal
        raise HTTPException(
            401,
            f"This route needs a token with the {needed} role: send 'Authorization: Bearer "
            f"<token>'. Create one with `loopml token create NAME --role {needed}`.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    record = state.client.metadata.tokens.verify(secret)
    if record is None:
        raise HTTPException(
            401,
            "The token is unknown, revoked or expired; `loopml token list` shows the tokens "
            "and `loopml token create` makes a new one.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not role_allows(record.role, needed):
        raise HTTPException(
            403,
            f"Token {record.name!r} has the {record.role} role; {request.method} "
            f"{request.url.path} needs {needed}. Use a token with that role.",
        )
    principal = Principal(record.name, record.role)
    request.state.principal = principal
    return principal
