"""What bounds one request: the body it may send, the answer it may get, the path values.

Every router uses :class:`CappedRoute` (``capped_router()`` builds one):

- **bodies** of POST/PUT/PATCH/DELETE over ``MAX_BODY_BYTES`` (16 MiB) get a 413 before
  they are kept: a ``Content-Length`` over the cap is refused before a byte is read, and a
  chunked body is counted as it streams in and refused as soon as it passes the cap (R19);
- **answers**: a JSON answer larger than ``MAX_RESPONSE_BYTES`` (8 MiB) is replaced by a
  400 that says how large it would have been and how to ask for less. Page limits
  (``MAX_LIMIT`` items) and the metric history's downsampling keep ordinary answers far
  below it; the cap is the guarantee for the rest (e.g. a page of runs that each carry a
  10 MB param). Artifact downloads stream and are not capped: their size is the
  artifact's, stated in ``Content-Length``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from loopml.server.errors import error
from loopml.serving.asgi import receive_body
from loopml.serving.bodies import RequestError
from loopml.store.metrics import INT64_MAX, INT64_MIN
from loopml.store.validate import MAX_KEY

#: Largest body of a write route (a metric batch, feedback, a trigger), in bytes.
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: A full SHA-256 digest or a unique prefix of at least 6 characters, lowercase hex only:
#: the API refuses anything else before it reaches the store (R23).
DIGEST_PATTERN = r"^[0-9a-f]{6,64}$"
#: The names of versioned things (datasets, models, suites), as the store spells them:
#: letters, digits, '.', '_' and '-', starting with a letter or digit, never '..'.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\.?$"
#: A run reference as ``RunStore.resolve`` takes it: a run id or an id prefix of 4+ hex
#: characters, or ``pipeline#N``.
RUN_REF_PATTERN = r"^(?:[0-9A-Fa-f]{4,32}|[^#]*#[0-9]{1,18})$"
#: A model alias as ``store.models.check_alias`` takes it ('latest' is reserved).
ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
#: A metric, param or tag key as ``store.validate.check_key`` takes it: 1 to 250
#: characters, no NUL.
KEY_PATTERN = r"^[^\x00]+$"
#: The OpenAPI schema of a key (the store checks it and names the key when it is wrong).
KEY_SCHEMA = {"minLength": 1, "maxLength": MAX_KEY, "pattern": KEY_PATTERN}

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
RunRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=300,
        # Documented here, checked by the store (400 naming the reference and the forms).
        json_schema_extra={"pattern": RUN_REF_PATTERN},
        description="A run id, a unique id prefix (4+ hex characters) or `pipeline#N` "
        "(send `#` as `%23`).",
    ),
]


#: The largest offset, evaluation number or history step a query may name.
MAX_INDEX = 2**62
#: The largest model version number a reference can spell (18 digits).
MAX_VERSION = 10**18 - 1
#: Integer bounds past 2**53 that routes declare. FastAPI's OpenAPI model keeps every bound
#: as a float, so 2**63 - 1 would be published as 9.223372036854776e+18, a different
#: number; :func:`exact_bounds` writes these back as the integers they are.
_WIDE_BOUNDS = {float(b): b for b in (INT64_MIN, INT64_MAX, MAX_INDEX, -MAX_INDEX, MAX_VERSION)}
_BOUND_KEYS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})


def exact_bounds(document: Any) -> Any:
    """``document`` (an OpenAPI dict) with every whole-number bound written as an integer."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in _BOUND_KEYS and isinstance(value, float) and value.is_integer():
                document[key] = int(value) if abs(value) < 2**53 else _WIDE_BOUNDS[value]
            else:
                exact_bounds(value)
    elif isinstance(document, list):
        for item in document:
            exact_bounds(item)
    return document


class CappedRoute(APIRoute):
    """An APIRoute whose body is read under :data:`MAX_BODY_BYTES` before FastAPI parses it,
    and whose JSON answer never exceeds :data:`MAX_RESPONSE_BYTES`."""

    #: The largest body this route reads; the web UI's form routes set a smaller one.
    max_body = MAX_BODY_BYTES

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def capped(request: Request) -> Response:
            if request.method in UNSAFE_METHODS:
                declared = request.headers.get("content-length", "")
                try:
                    body = await receive_body(
                        request.receive,
                        int(declared) if declared.isdigit() else -1,
                        self.max_body,
                        "send smaller batches",
                    )
                except RequestError as exc:
                    refused = JSONResponse({"detail": exc.detail}, exc.status)
                    refused.headers["Connection"] = "close"
                    return refused
                request._body = body  # what request.body() and FastAPI's parsing read
            response = await handler(request)
            answer = getattr(response, "body", None)
            if isinstance(answer, bytes | memoryview) and len(answer) > MAX_RESPONSE_BYTES:
                return error(
                    400,
                    f"The answer to {request.url.path} would be {len(answer):,} bytes, over the "
                    f"server's cap of {MAX_RESPONSE_BYTES:,}; ask for fewer items (a smaller "
                    "'limit') or fewer points ('max_points').",
                    "response_too_large",
                    ["query", "limit"],
                )
            return response

        return capped


def capped_router(**options: Any) -> APIRouter:
    """An ``APIRouter`` whose routes are :class:`CappedRoute`."""
    return APIRouter(route_class=CappedRoute, **options)


def finite(value: float | None) -> float | None:
    """``value``, or None for NaN and infinities (JSON has no spelling for them)."""
    return value if value is not None and value - value == 0 else None
