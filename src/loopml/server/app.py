"""The server's FastAPI app: ``/health`` and the ``/api`` routers, over one ``Client``.

``create_app(client, auth=...)`` builds it; ``loopml server`` runs it on uvicorn next to the
scheduler. The OpenAPI document is at ``/api/openapi.json`` and the interactive docs at
``/api/docs``; with auth on, both need a token like every other route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from loopml.server import errors
from loopml.server.api import ROUTERS
from loopml.server.api.limits import exact_bounds
from loopml.server.auth import authorize

if TYPE_CHECKING:
    from loopml.tracking.client import Client

API_TITLE = "loopml"


@dataclass
class ServerState:
    """What every route reaches through ``request.app.state.loopml``."""

    client: Client
    auth: bool


def create_app(client: Client, *, auth: bool = False) -> FastAPI:
    """The REST API over ``client``'s store; ``auth`` makes every route need a token."""
    from loopml import __version__

    app = FastAPI(
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
    errors.install(app)

    @app.get("/health", tags=["server"], summary="Liveness probe (no token needed)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    api = APIRouter(prefix="/api", dependencies=[Depends(authorize)])

    @api.get("/openapi.json", include_in_schema=False)
    def openapi_document() -> JSONResponse:
        return JSONResponse(exact_bounds(app.openapi()))

    @api.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title=f"{API_TITLE} API")

    for router in ROUTERS():
        api.include_router(router)
    app.include_router(api)
    return app
