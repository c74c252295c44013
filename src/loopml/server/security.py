"""What the server does for every browser request: refuse cross-site writes, set safe headers.

One plain ASGI middleware in front of the whole app (API and web UI), so no route can opt
out of it:

- **CSRF** (R22): an unsafe request (POST, PUT, PATCH, DELETE — DELETE too, the gap in Ray
  CVE-2026-27482) is refused with 403 when the browser says it comes from another site: an
  ``Origin`` that is not this server's own, or ``Sec-Fetch-Site: cross-site``/``same-site``.
  An ``/api`` request with a body type a web page can send without a CORS preflight
  (``application/x-www-form-urlencoded``, ``multipart/form-data``, ``text/plain``) is refused
  too: the API takes JSON or raw bytes, never forms. The web UI's own forms also carry a
  per-browser token (``ui/session.py``); this guard is the layer below it.
- **Headers** on every answer: ``X-Frame-Options: DENY`` and ``frame-ancestors 'none'`` (no
  clickjacking), ``nosniff``, ``Referrer-Policy: same-origin``. Pages of the web UI also get
  a Content-Security-Policy that runs only the server's own script files (no inline script,
  no other origin), so even an escaping mistake could not execute a stored payload.
- **No CORS**: the server never sends ``Access-Control-Allow-Origin``, so a page on another
  origin cannot read an answer, whatever ``Origin`` it claims.

Written by hand because Starlette's ``CORSMiddleware`` does the opposite job (allowing
origins) and no maintained ASGI package checks ``Origin``/``Sec-Fetch-Site`` on writes.
"""

from __future__ import annotations

from typing import Any

from loopml.server import errors

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Content types a cross-site HTML form or ``fetch`` may send without a preflight.
SIMPLE_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")

#: The UI's policy: scripts and styles only from the server itself (inline ``style``
#: attributes stay allowed: the SVG charts use them, and CSS cannot run code).
UI_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: Everything else (JSON, downloads, the API docs) only forbids framing.
BASE_POLICY = "frame-ancestors 'none'"


def _origin_host(origin: str) -> str:
    """``https://name:port`` → ``name:port`` (lower case); ``""`` for ``null`` and the like."""
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme not in ("http", "https"):
        return ""
    return rest.split("/", 1)[0].lower()


def _default_port(host: str, scheme: str) -> str:
    """``name`` → ``name:80`` for http (``:443`` for https): ``Origin`` and ``Host`` may
    write the default port or leave it out."""
    if host.startswith("["):
        return host if "]:" in host else f"{host}:{'443' if scheme == 'https' else '80'}"
    return host if ":" in host else f"{host}:{'443' if scheme == 'https' else '80'}"


def cross_site(method: str, path: str, headers: dict[bytes, bytes], scheme: str) -> str | None:
    """Why this request is refused as cross-site, or None."""
    if method not in UNSAFE_METHODS:
        return None
    site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
    if site in ("cross-site", "same-site"):
        return f"the browser marked it Sec-Fetch-Site: {site}"
    origin = headers.get(b"origin")
    if origin is not None:
        claimed = _origin_host(origin.decode("latin-1"))
        host = headers.get(b"host", b"").decode("latin-1").lower()
        origin_scheme = origin.decode("latin-1").partition("://")[0]
        if not claimed or _default_port(claimed, origin_scheme) != _default_port(host, scheme):
            return f"its Origin {origin.decode('latin-1')[:100]!r} is not this server"
    if path == "/api" or path.startswith("/api/"):
        ctype = headers.get(b"content-type", b"").decode("latin-1").lower()
        if ctype.split(";", 1)[0].strip() in SIMPLE_TYPES:
            return (
                f"the API does not accept {ctype.split(';', 1)[0].strip()} bodies (a type any "
                "web page can send cross-site); send application/json"
            )
    return None


class BrowserGuard:
    """The CSRF check and the security headers (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        reason = cross_site(scope["method"], scope["path"], headers, scope.get("scheme", "http"))
        if reason is not None:
            response = errors.error(
                403,
                f"Refused {scope['method']} {scope['path'][:200]}: {reason}. Writes are "
                "accepted only from this server's own pages or from clients that are not "
                "browsers (send a token in the Authorization header).",
                "csrf",
                ["header", "origin"],
            )
            await self._send_with_headers(response, scope, receive, send)
            return
        await self._send_with_headers(self.app, scope, receive, send)

    @staticmethod
    async def _send_with_headers(app: Any, scope: Any, receive: Any, send: Any) -> None:
        async def send_secured(message: Any) -> None:
            if message["type"] == "http.response.start":
                raw = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"access-control-allow-origin"
                ]
                present = {k.lower() for k, _ in raw}
                ctype = dict(raw).get(b"content-type", b"")
                is_page = ctype.startswith(b"text/html") and not scope["path"].startswith("/api/")
                added = [
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (
                        b"content-security-policy",
                        (UI_POLICY if is_page else BASE_POLICY).encode(),
                    ),
                ]
                raw += [(k, v) for k, v in added if k not in present]
                message = {**message, "headers": raw}
            await send(message)

        await app(scope, receive, send_secured)
