"""The two ASGI layers in front of the serving app.

- :class:`TokenGuard` — with a token, every route but the probes needs ``Authorization:
  Bearer TOKEN``, compared in constant time; it sits outermost, so nothing is reached
  without it.
- :class:`PredictFastPath` — ``POST /predict`` answered straight from the ASGI messages.

Both are plain ASGI callables (not Starlette's ``BaseHTTPMiddleware``, which buffers and
costs more per request than predicting one row).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from loopml.serving.bodies import SERVE_BODY_FIX, too_large

Scope = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]
OPEN_PATHS = frozenset({"/health", "/ready"})  # probes answer without a token


class PredictFastPath:
    """``POST /predict`` answered straight from the ASGI scope, ahead of FastAPI's routing,
    dependency solving and request objects (which cost more than the prediction of one row;
    the route stays declared for ``/docs`` and for apps that mount this one)."""

    def __init__(
        self,
        app: ASGIApp,
        answer: Callable[
            [str | None, Callable[[], Awaitable[bytes]]], Awaitable[tuple[int, bytes]]
        ],
        cap: int,
    ) -> None:
        self.app = app
        self.answer = answer
        self.cap = cap

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        content_type: str | None = None
        declared = -1
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"content-length" and value.isdigit():
                declared = int(value)

        async def read() -> bytes:
            return await receive_body(receive, declared, self.cap)

        status, content = await self.answer(content_type, read)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


async def receive_body(
    receive: Callable[[], Awaitable[Any]], declared: int, cap: int, fix: str = SERVE_BODY_FIX
) -> bytes:
    """The body from ASGI messages, counted as it streams in (413 past ``cap``, saying
    ``fix``)."""
    if declared > cap:
        raise too_large(declared, cap, fix)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise too_large(size, cap, fix)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class TokenGuard:
    """Every route but the probes needs ``Authorization: Bearer TOKEN`` (constant-time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http" and scope.get("path") not in OPEN_PATHS:
            given = b""
            for key, value in scope.get("headers", ()):
                if key == b"authorization":
                    scheme, _, given = value.partition(b" ")
                    if scheme.lower() != b"bearer":  # the scheme is case-insensitive (RFC 7235)
                        given = b""
                    break
            if not hmac.compare_digest(given.strip(), self.expected):
                body = (
                    b'{"detail":[{"loc":["header","authorization"],"msg":"This server needs '
                    b"Authorization: Bearer <token> (the token given to loopml serve --token or "
                    b'LOOPML_SERVE_TOKEN).","type":"unauthorized"}]}'
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
