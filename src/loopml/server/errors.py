"""Every error as JSON that names the problem, with the right 4xx status; never a traceback.

The body has FastAPI's shape for validation errors, for every status: ``{"detail": [{"loc":
[...], "msg": "...", "type": "..."}]}``, so a client reads one format. loopml's own errors
map to statuses by kind (not found 404, bad value 400, conflict 409, store down 503).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from loopml.errors import (
    ConflictError,
    IntegrityError,
    InvalidParameterError,
    LoopmlError,
    NotFoundError,
    StoreUnavailableError,
)

log = logging.getLogger("loopml.server")


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """What every refused request gets."""

    detail: list[ErrorItem]


def _described(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: Documented on every route, so clients (and schemathesis) know the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _described("A value is not valid; the message names it and says what is expected."),
    401: _described("No token, or a token that is unknown, revoked or expired."),
    403: _described("The token's role may not do this."),
    404: _described("The thing named in the path does not exist."),
    409: _described("A concurrent change won, or the request conflicts with what is stored."),
    413: _described("The body is larger than the server's limit."),
    422: _described("A parameter or the body does not have the expected shape."),
    503: _described("The store cannot be reached, or a stored blob is damaged; retry later."),
}


def error(status: int, msg: str, type: str, loc: list[str | int] | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"detail": [{"loc": loc or [], "msg": msg, "type": type}]}, status, headers=headers
    )


def status_of(exc: LoopmlError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, InvalidParameterError):
        return 400
    if isinstance(exc, StoreUnavailableError | IntegrityError):
        return 503
    return 400


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "header", "body"):
        kind, rest = parts[0], parts[1:]
        return f"{kind} parameter {'.'.join(rest)!r}" if rest else f"the request {kind}"
    return ".".join(parts)


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (the ``Allow`` of a 405).

    Starlette answers 405 from the first route whose path matches, so ``GET /tokens`` and
    ``POST /tokens``, two routes, would each advertise only their own method.
    """
    from fastapi.routing import iter_route_contexts

    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(route.methods or ())
    return ", ".join(sorted(methods))


#: Makes the HTML error page of a web UI path, or returns None to answer JSON.
PageMaker = Callable[[Request, int, str], Response | None]


def install(app: FastAPI, page: PageMaker | None = None) -> None:
    """Register the handlers on ``app``; ``page`` answers the web UI's paths with HTML."""

    def answer(request: Request, status: int, msg: str, type: str) -> Response:
        shown = page(request, status, msg) if page is not None else None
        return shown if shown is not None else error(status, msg, type)

    @app.exception_handler(LoopmlError)
    async def loopml_error(request: Request, exc: LoopmlError) -> Response:
        status = status_of(exc)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        return answer(request, status, str(exc), type(exc).__name__)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        items = []
        for e in exc.errors():
            loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
            if e.get("type") == "json_invalid":  # loc is ("body", character offset)
                reason = (e.get("ctx") or {}).get("error", "malformed")
                where = f" at character {loc[-1]}" if isinstance(loc[-1], int) else ""
                msg = f"The body is not valid JSON: {reason}{where}; send valid JSON."
                items.append({"loc": loc, "msg": msg, "type": "json_invalid"})
                continue
            shown = repr(e.get("input"))[:80] if "input" in e else None
            msg = f"{_field(tuple(loc))}: {e.get('msg', 'invalid')}"
            if shown is not None and e.get("type") != "missing":
                msg += f" (got {shown})"
            items.append({"loc": loc, "msg": msg, "type": str(e.get("type", "invalid"))})
        text = "; ".join(str(i["msg"]) for i in items)
        html = page(request, 422, text) if page is not None else None
        return html if html is not None else JSONResponse({"detail": items}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.detail, list):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        msg = str(exc.detail)
        if exc.status_code == 400 and msg == "There was an error parsing the body":
            msg = (
                "The body is not JSON this server can read (malformed, cut off, or nested "
                "deeper than it parses); send valid JSON."
            )
        if exc.status_code == 404 and msg == "Not Found":
            msg = f"No route {request.method} {request.url.path}; GET /api/openapi.json lists them."
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            msg = f"{request.method} is not allowed on {request.url.path}; use {allowed}."
            headers["Allow"] = allowed
        response = answer(request, exc.status_code, msg, "http")
        for key, value in headers.items():
            response.headers[key] = value
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return answer(
            request,
            500,
            f"Internal error ({type(exc).__name__}); this is a bug in loopml, please report it "
            "with the server log.",
            "internal",
        )
