"""How much one write request may send: bodies over the cap get a 413 before they are kept.

The write routes use :class:`CappedRoute`: a ``Content-Length`` over the cap is refused
before a byte is read, and a chunked body is counted as it streams in and refused as soon
as it passes the cap (R19), with the API's JSON error shape. JSON nested deeper than the
parser allows is a 400, never a ``RecursionError``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

#: Largest JSON body of a write route (a metric batch, feedback, a trigger), in bytes.
MAX_BODY_BYTES = 16 * 1024 * 1024


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


async def read_capped(request: Request, cap: int = MAX_BODY_BYTES) -> bytes:
    """The body, counted as it streams in; :class:`_TooLarge` past ``cap``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _TooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _TooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


class CappedRoute(APIRoute):
    """A route whose body is read under :data:`MAX_BODY_BYTES` before FastAPI parses it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def capped(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH", "DELETE"):
                try:
                    body = await read_capped(request)
                except _TooLarge as exc:
                    return JSONResponse(
                        {
                            "detail": [
                                {
                                    "loc": ["body"],
                                    "msg": f"The body is over this server's limit of "
                                    f"{MAX_BODY_BYTES:,} bytes (at least {exc.size:,} came); "
                                    "send smaller batches.",
                                    "type": "too_large",
                                }
                            ]
                        },
                        413,
                        headers={"Connection": "close"},
                    )
                request._body = body  # what request.body() and FastAPI's parsing read
            return await handler(request)

        return capped


def capped_router(**options: Any) -> APIRouter:
    """An ``APIRouter`` whose routes are :class:`CappedRoute`."""
    return APIRouter(route_class=CappedRoute, **options)
