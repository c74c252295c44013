"""The server's FastAPI app: ``/health``, ``/metrics``, the ``/api`` routers and the web UI,
over one ``Client``.

``create_app(client, auth=...)`` builds it; ``loopml server`` runs it on uvicorn next to the
scheduler. The OpenAPI document is at ``/api/openapi.json`` and the interactive docs at
``/api/docs``; with auth on, both need a token like every other route.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from loopml.server import errors, ui
from loopml.server.api import ROUTERS
from loopml.server.api.limits import exact_bounds
from loopml.server.auth import authorize
from loopml.server.security import BrowserGuard

if TYPE_CHECKING:
    from loopml.tracking.client import Client

API_TITLE = "loopml"
#: The Host names a loopback server without auth answers to; any other is refused (400), so
#: a web page cannot reach it through DNS rebinding (a name of its own pointed at 127.0.0.1).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class HostGuard:
    """Refuse requests whose ``Host`` is not an allowed name (plain ASGI, before routing)."""

    def __init__(self, app: Any, hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = ""
            for key, value in scope["headers"]:
                if key == b"host":
                    host = value.decode("latin-1").lower()
                    break
            name = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
            if name not in self.hosts:
                response = errors.error(
                    400,
                    f"Host {host[:100]!r} is not one this server answers to (allowed: "
                    f"{', '.join(sorted(self.hosts))}). Use http://127.0.0.1:PORT; to answer "
                    "to another name, start the server with --allowed-host NAME (or with "
                    "--auth, which answers to any name).",
                    "host",
                    ["header", "host"],
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class GuardedApp(FastAPI):
    """FastAPI with the browser guard (``security.py``) and the Host check as its OUTERMOST
    layers, outside Starlette's own error middleware: every answer, an unexpected 500 and
    the Host check's 400 included, carries the security headers (R22)."""

    allowed_hosts: Sequence[str] | None = None

    def build_middleware_stack(self) -> Any:
        inner = super().build_middleware_stack()
        if self.allowed_hosts is not None:
            inner = HostGuard(inner, hosts=self.allowed_hosts)
        return BrowserGuard(inner)


@dataclass
class ServerState:
    """What every route reaches through ``request.app.state.loopml``."""

    client: Client
    auth: bool


def create_app(
    client: Client, *, auth: bool = False, allowed_hosts: Sequence[str] | None = None
) -> FastAPI:
    """The REST API over ``client``'s store; ``auth`` makes every route need a token.

    ``allowed_hosts``: the ``Host`` names answered; default: the loopback names when auth
    is off (DNS rebinding, R22), any name when it is on (the token is the guard).
    """
    from loopml import __version__

    app = GuardedApp(
        title=API_TITLE,
        version=__version__,
        description="The loopml REST API: runs, artifacts, data, models, evaluations and "
        "schedules of one store. Send `Authorization: Bearer <token>`; reads need no token "
        "on a loopback server started without --auth.",
        openapi_url=None,  # served below, behind the same auth as the API
        docs_url=None,
        redoc_url=None,
        responses=errors.ERROR_RESPONSES,
    )
    app.state.loopml = ServerState(client=client.open(), auth=auth)
    errors.install(app, page=ui.error_page)

    @app.get("/health", tags=["server"], summary="Liveness probe (no token needed)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from loopml.monitoring.prometheus import registry

    metrics = registry(app.state.loopml.client)

    # Not in the OpenAPI document (it is Prometheus text, not the REST API); a reader token
    # with --auth, as every read: Prometheus sends it (`authorization: credentials_file`).
    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(authorize)])
    def prometheus() -> Response:
        """The monitors' gauges and this process's own series (docs/grafana.md)."""
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    api = APIRouter(prefix="/api", dependencies=[Depends(authorize)])

    @api.get("/openapi.json", include_in_schema=False)
    def openapi_document() -> JSONResponse:
        return JSONResponse(exact_bounds(app.openapi()))

    @api.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        # Swagger UI is vendored (static/vendor/swagger-ui): the docs open with no internet.
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title=f"{API_TITLE} API",
            swagger_js_url=f"{ui.STATIC_PREFIX}/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ui.STATIC_PREFIX}/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{ui.STATIC_PREFIX}/favicon.svg",
        )

    for router in ROUTERS():
        api.include_router(router)
    app.include_router(api)
    ui.install(app)
    # The browser guard, then the Host check, before anything else runs (GuardedApp).
    app.allowed_hosts = (
        allowed_hosts if allowed_hosts is not None else (None if auth else LOOPBACK_HOSTS)
    )
    return app
