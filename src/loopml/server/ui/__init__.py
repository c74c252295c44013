"""The web UI: server-rendered pages over the same ``Client`` as the REST API and the CLI.

``install(app)`` adds the pages (``views/``), sign-in (``session.py``), the vendored static
files (``static/``: our CSS and script, nothing from a CDN, so the UI works offline) and
HTML error pages for the UI's paths (the API keeps its JSON errors).

Pages: ``/``, ``/runs`` (+ ``/runs/compare``), ``/runs/<id>``, ``/pipelines``,
``/pipelines/<name>``, ``/models``, ``/models/<name>``, ``/evaluations``,
``/evaluations/<suite>``, ``/datasets``, ``/datasets/<name>``, ``/monitors``,
``/monitors/<name>``, ``/monitors/<name>/windows/<start>``. Nothing is possible here
that the library (and so the CLI and the API) cannot do: each write calls the library
function the API route calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI, Request
    from starlette.responses import Response

#: The page modules under ``views/``, each with a ``router`` made by :func:`page_router`.
VIEWS = ("home", "runs", "run", "pipelines", "models", "evaluations", "datasets", "monitors")
STATIC_PREFIX = "/static"
#: The largest form a UI button may post (a sign-in token, a reason, a few fields).
MAX_FORM_BYTES = 64 * 1024


def page_router() -> APIRouter:
    """A router for UI pages: out of the OpenAPI document, bodies capped at ``MAX_FORM_BYTES``."""
    from fastapi import APIRouter

    from loopml.server.api.limits import CappedRoute

    class FormRoute(CappedRoute):
        max_body = MAX_FORM_BYTES

    return APIRouter(include_in_schema=False, route_class=FormRoute)


def is_ui_path(path: str) -> bool:
    """Paths whose errors are HTML pages (everything but the API and the probes)."""
    return not (path == "/api" or path.startswith("/api/") or path in ("/health", "/metrics"))


def error_page(request: Request, status: int, message: str) -> Response | None:
    """The HTML error page for a UI path, or None to keep the JSON error."""
    if not is_ui_path(request.url.path) or request.url.path.startswith(STATIC_PREFIX + "/"):
        return None
    from loopml.server.ui.render import render

    if status == 404 and message.startswith("No route "):
        message = f"There is no page at {request.url.path}. The links above lead to every page."
    titles = {
        400: "Bad request",
        401: "Sign in needed",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        413: "Too large",
        422: "Bad request",
        503: "Store unavailable",
    }
    return render(
        request,
        "error.html",
        title=titles.get(status, "Error"),
        status=status,
        message=message,
        status_code=status,
    )


def install(app: FastAPI) -> None:
    """Add the web UI to ``app`` (called by ``server.app.create_app``)."""
    from importlib import import_module

    from fastapi import Depends
    from fastapi.responses import RedirectResponse
    from starlette.staticfiles import StaticFiles

    from loopml.server.ui import session

    app.mount(
        STATIC_PREFIX,
        StaticFiles(packages=[("loopml.server.ui", "static")]),
        name="static",
    )
    from loopml.server.api.limits import CappedRoute

    app.include_router(session.router)
    for name in VIEWS:
        module = import_module(f"loopml.server.ui.views.{name}")
        for route in module.router.routes:  # every page's body is capped (R19)
            if not isinstance(route, CappedRoute) or route.max_body > MAX_FORM_BYTES:
                raise TypeError(f"UI route {route} must come from ui.page_router()")
        app.include_router(module.router, dependencies=[Depends(session.can_read)])

    @app.exception_handler(session.SignInRequired)
    async def sign_in(request: Request, exc: session.SignInRequired) -> Response:
        from loopml.server.ui.render import url

        return RedirectResponse(url("/login", next=exc.next_path), status_code=303)
