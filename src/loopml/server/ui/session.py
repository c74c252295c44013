"""Signing in to the web UI with a token, and the per-browser token every UI form carries.

- **Sign in**: ``/login`` takes a token made with ``loopml token create``. The server checks
  it and keeps it in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` over HTTPS);
  every page request checks it again against the store, so revoking the token (or its
  expiry) signs the browser out at once. Page scripts never see it.
- **Reads**: with auth on, every page needs a signed-in reader (else a redirect to
  ``/login``); with auth off (loopback), pages are open, as the API's reads are.
- **Writes** (pause, promote …) need a signed-in writer (or admin) in both modes: the same
  rule as the API, enforced here on the server whatever the page showed.
- **CSRF**: each browser gets a random ``loopml_csrf`` cookie; every UI form posts it back
  in a hidden field, and a write whose field does not match is refused (403). The
  ``BrowserGuard`` middleware's ``Origin`` check is the layer below.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Annotated

from fastapi import Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from loopml.server.auth import ANONYMOUS, SAFE_METHODS, Principal
from loopml.server.ui import page_router
from loopml.server.ui.render import TZ_COOKIE, Viewer, render, zone
from loopml.store.tokens import Role, role_allows

if TYPE_CHECKING:
    from starlette.responses import HTMLResponse

SESSION_COOKIE = "loopml_session"
CSRF_COOKIE = "loopml_csrf"
CSRF_FIELD = "csrf"
MAX_TOKEN_CHARS = 200

router = page_router()


class SignInRequired(Exception):
    """A page that needs a signed-in token was asked for without one (auth on)."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def principal(request: Request) -> Principal | None:
    """The signed-in token of this browser, checked against the store; None if none."""
    if hasattr(request.state, "ui_principal"):
        cached: Principal | None = request.state.ui_principal
        return cached
    secret = request.cookies.get(SESSION_COOKIE)
    found = None
    if secret and len(secret) <= MAX_TOKEN_CHARS:
        record = request.app.state.loopml.client.metadata.tokens.verify(secret)
        if record is not None:
            found = Principal(record.name, record.role)
    request.state.ui_principal = found
    return found


def csrf_token(request: Request) -> str:
    """This browser's form token: its cookie, or a new one (set on the answer by the page)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) != 43:
        token = getattr(request.state, "new_csrf", "") or secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


def viewer(request: Request) -> Viewer:
    state = request.app.state.loopml
    return Viewer(
        principal=principal(request),
        auth=state.auth,
        csrf=csrf_token(request),
        tz=zone(request.cookies.get(TZ_COOKIE)),
    )


def can_read(request: Request) -> None:
    """Every page's dependency: with auth on, a signed-in token is needed to read.

    Writes are left to :func:`writer` / :func:`admin`, which answer 401 rather than
    redirecting to the sign-in page."""
    if request.method not in SAFE_METHODS:
        return
    if request.app.state.loopml.auth and principal(request) is None:
        query = f"?{request.url.query}" if request.url.query else ""
        raise SignInRequired(request.url.path + query)


def writer(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Principal:
    """The dependency of every UI write button (POST): see :func:`check_write`."""
    return check_write(request, csrf, Role.WRITER)


def admin(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Principal:
    """The dependency of the UI's admin-only writes."""
    return check_write(request, csrf, Role.ADMIN)


def check_write(request: Request, csrf: str, needed: Role = Role.WRITER) -> Principal:
    """A UI write's checks: the token may write, and the form token matches this browser."""
    who = principal(request)
    if who is None:
        raise HTTPException(
            401,
            f"Sign in with a token that has the {needed} role to do this (make one with "
            f"`loopml token create NAME --role {needed}`).",
        )
    if not role_allows(who.role, needed):
        raise HTTPException(
            403, f"Token {who.name!r} has the {who.role} role; this needs {needed}."
        )
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf.encode()):
        raise HTTPException(
            403,
            "This form is stale or was not sent from this server's pages (its CSRF token "
            "does not match this browser). Reload the page and try again.",
        )
    return who


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never ``//other`` or ``https://other``): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", title="Sign in", next=_safe_next(next), problem=None)


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form(max_length=MAX_TOKEN_CHARS)],
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf.encode()):
        return render(
            request,
            "login.html",
            title="Sign in",
            next=_safe_next(next),
            problem="The sign-in form expired; it has been reloaded. Paste the token again.",
            status_code=403,
        )
    record = request.app.state.loopml.client.metadata.tokens.verify(token.strip())
    if record is None:
        return render(
            request,
            "login.html",
            title="Sign in",
            next=_safe_next(next),
            problem="That token is unknown, revoked or expired. `loopml token list` shows the "
            "tokens; `loopml token create NAME --role reader` makes one.",
            status_code=401,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=30 * 24 * 3600,
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf.encode()):
        raise HTTPException(403, "Stale sign-out form; reload the page and try again.")
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    return response


def set_cookies(request: Request, response: Response) -> None:
    """Give a new browser its CSRF cookie (when this request made one)."""
    token = getattr(request.state, "new_csrf", "")
    if token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request)
        )


__all__ = [
    "ANONYMOUS",
    "admin",
    "can_read",
    "check_write",
    "principal",
    "router",
    "viewer",
    "writer",
]
