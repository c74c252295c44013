"""What bounds a read route's answer: a byte cap on every JSON body, and checked path values.

Every router of the read side uses :class:`CappedRoute`: a JSON answer larger than
``MAX_RESPONSE_BYTES`` (8 MiB) is replaced by a 400 that says how large it would have
been and how to ask for less. Page limits (``MAX_LIMIT`` items) and the metric history's
downsampling keep ordinary answers far below it; the cap is the guarantee for the rest
(e.g. a page of runs that each carry a 10 MB param). Artifact downloads stream and are
not capped: their size is the artifact's, stated in ``Content-Length``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Path, Response
from fastapi.routing import APIRoute
from starlette.requests import Request

from loopml.server.errors import error

MAX_RESPONSE_BYTES = 8 * 1024 * 1024

#: A full SHA-256 digest or a unique prefix of at least 6 characters, lowercase hex only:
#: the API refuses anything else before it reaches the store (R23).
DIGEST_PATTERN = r"^[0-9a-f]{6,64}$"
#: The names of versioned things (datasets, models, suites), as the store spells them.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"

Digest = Annotated[
    str,
    Path(
        pattern=DIGEST_PATTERN,
        max_length=64,
        description="A SHA-256 digest (64 lowercase hex) or a unique prefix of 6 or more.",
    ),
]
Name = Annotated[
    str,
    Path(
        pattern=NAME_PATTERN,
        max_length=200,
        description="Letters, digits, '.', '_' and '-', starting with a letter or digit.",
    ),
]


class CappedRoute(APIRoute):
    """An APIRoute whose JSON answers never exceed ``MAX_RESPONSE_BYTES``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def capped(request: Request) -> Response:
            response = await handler(request)
            body = getattr(response, "body", None)
            if isinstance(body, bytes | memoryview) and len(body) > MAX_RESPONSE_BYTES:
                return error(
                    400,
                    f"The answer to {request.url.path} would be {len(body):,} bytes, over the "
                    f"server's cap of {MAX_RESPONSE_BYTES:,}; ask for fewer items (a smaller "
                    "'limit') or fewer points ('max_points').",
                    "response_too_large",
                    ["query", "limit"],
                )
            return response

        return capped


RunRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=300,
        description="A run id, a unique id prefix (4+ characters) or `pipeline#N` "
        "(send `#` as `%23`).",
    ),
]


def finite(value: float | None) -> float | None:
    """``value``, or None for NaN and infinities (JSON has no spelling for them)."""
    return value if value is not None and value - value == 0 else None
