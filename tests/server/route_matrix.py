"""The route × role auth matrix (R20), as a checker other tests can point at any app.

Routes come from the app itself (``fastapi.routing.iter_route_contexts`` walks included
routers the way FastAPI dispatches them), never from a list written here, so a route added
tomorrow is checked tomorrow. Each route is called over real HTTP as every kind of caller;
the expected outcome follows from the route's needed role (``x-role`` in its
``openapi_extra``, else ``reader`` for GET and ``writer`` for any other method) and from
whether auth is on. Only the auth outcome is judged (401, 403, or "let through": anything
else), since it is decided before the handler runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

#: Routes that answer without a token by design, with the reason.
PUBLIC = {
    ("GET", "/health"): "liveness probe for load balancers",
    ("GET", "/static/{rest}"): "the web UI's CSS, script and icon: no data",
    ("GET", "/login"): "the web UI's sign-in form",
    ("POST", "/login"): "signing in is how a browser gets its token",
    ("POST", "/logout"): "signing out needs no role",
}
#: The web UI's form token, sent as its cookie and as the ``csrf`` field of every UI write.
UI_CSRF = "c" * 43
SAFE = {"GET", "HEAD", "OPTIONS"}
CALLERS = ("none", "reader", "writer", "admin", "revoked", "expired")
DUMMY = "zz-no-such"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")
_ORDER = ["reader", "writer", "admin"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    needed: str
    url: str
    has_body: bool

    @property
    def is_ui(self) -> bool:
        """A web UI page or button: signed in with a cookie, not a bearer token."""
        return is_ui_path(self.template)


#: Routes outside /api that take a bearer token as the API does (Prometheus scrapes /metrics).
BEARER = {"/metrics"}


def is_ui_path(path: str) -> bool:
    return not (path == "/api" or path.startswith("/api/")) and path not in {"/health", *BEARER}


@dataclass(frozen=True)
class Failure:
    endpoint: Endpoint
    caller: str
    auth: bool
    expected: str
    status: int
    body: str

    def __str__(self) -> str:
        e = self.endpoint
        return (
            f"{e.method} {e.template} (needs {e.needed}) as {self.caller}, auth "
            f"{'on' if self.auth else 'off'}: expected {self.expected}, got {self.status} "
            f"{self.body[:160]}"
        )


def make_tokens(client: Any) -> dict[str, str]:
    """One secret per kind of caller, made in ``client``'s store (and the revoked revoked)."""
    tokens = client.metadata.tokens
    secrets = {}
    stamp = f"{time.monotonic_ns():x}"
    for role in _ORDER:
        secrets[role] = tokens.create(f"m-{role}-{stamp}", role, by="test")[1]
    secrets["revoked"] = tokens.create(f"m-revoked-{stamp}", "admin", by="test")[1]
    tokens.revoke(f"m-revoked-{stamp}")
    secrets["expired"] = tokens.create(
        f"m-expired-{stamp}", "admin", by="test", expires_at=time.time() - 1
    )[1]
    return secrets


def _fill(template: str, known: Mapping[str, str], *, use_known: bool) -> str:
    def value(match: re.Match[str]) -> str:
        name, convertor = match.group(1), match.group(2)
        if use_known and name in known:
            return known[name]
        return "0" if convertor in ("int", "float") else DUMMY

    return _PARAM.sub(value, template)


def needed_role(method: str, extra: Mapping[str, Any] | None, dependant: Any = None) -> str:
    if extra and "x-role" in extra:
        return str(extra["x-role"])
    if dependant is not None:  # a web UI write says its role by its dependency
        from loopml.server.ui import session

        calls = {d.call for d in dependant.dependencies}
        if session.admin in calls:
            return "admin"
    return "reader" if method in SAFE else "writer"


def endpoints(app: Any, known: Mapping[str, str] = {}) -> list[Endpoint]:
    """Every (method, route) of ``app``, with a URL to call it at.

    Reads fill path parameters with existing objects from ``known`` (by parameter name), so
    they reach real records; writes get values that match nothing, so a write let through
    by the check fails on its missing object instead of changing the store under the test.
    """
    found: list[Endpoint] = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        path = ctx.path or ""
        if isinstance(route, Mount):
            found.append(Endpoint("GET", path + "/{rest}", "reader", path + "/" + DUMMY, False))
            continue
        extra = getattr(ctx, "openapi_extra", None)
        for method in sorted(ctx.methods or ()):
            if method == "HEAD" and "GET" in (ctx.methods or ()):
                continue
            safe = method in SAFE
            found.append(
                Endpoint(
                    method,
                    path,
                    needed_role(method, extra, getattr(ctx, "dependant", None)),
                    _fill(path, known, use_known=safe),
                    not safe,
                )
            )
    return found


def expected(endpoint: Endpoint, caller: str, *, auth: bool) -> str:
    if (endpoint.method, endpoint.template) in PUBLIC:
        return "through"
    if endpoint.is_ui and caller in ("revoked", "expired"):
        caller = "none"  # a browser whose token died is simply signed out
    if caller in ("revoked", "expired"):
        return "401"
    if caller == "none":
        return "through" if not auth and endpoint.needed == "reader" else "401"
    return "through" if _ORDER.index(caller) >= _ORDER.index(endpoint.needed) else "403"


def outcome(status: int, location: str = "") -> str:
    if status == 303 and location.startswith("/login"):
        return "401"  # a web UI page sends a browser without a token to the sign-in form
    return str(status) if status in (401, 403) else "through"


def check(
    app: Any, base_url: str, secrets: Mapping[str, str], *, auth: bool, known: Mapping[str, str]
) -> tuple[list[Endpoint], list[Failure]]:
    """Call every route of ``app`` (served at ``base_url``) as every caller."""
    routes = endpoints(app, known)
    failures: list[Failure] = []
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for endpoint in routes:
            for caller in CALLERS:
                headers: dict[str, str] = {}
                kwargs: dict[str, Any] = {"json": {}} if endpoint.has_body else {}
                if endpoint.is_ui:
                    cookies = {"loopml_csrf": UI_CSRF}
                    if caller != "none":
                        cookies["loopml_session"] = secrets[caller]
                    headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
                    if endpoint.has_body:
                        kwargs = {"data": {"csrf": UI_CSRF}}
                elif caller != "none":
                    headers["Authorization"] = f"Bearer {secrets[caller]}"
                response = http.request(endpoint.method, endpoint.url, headers=headers, **kwargs)
                want = expected(endpoint, caller, auth=auth)
                got = outcome(response.status_code, response.headers.get("location", ""))
                if got != want:
                    failures.append(
                        Failure(endpoint, caller, auth, want, response.status_code, response.text)
                    )
                elif want != "through" and endpoint.is_ui:
                    if response.status_code != 303 and "Sign in" not in response.text:
                        failures.append(
                            Failure(endpoint, caller, auth, "an HTML page", 0, response.text)
                        )
                elif want != "through":
                    body = response.json()
                    if not (body.get("detail") and body["detail"][0].get("msg")):
                        failures.append(
                            Failure(endpoint, caller, auth, "a JSON error", 0, response.text)
                        )
    return routes, failures
