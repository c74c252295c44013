"""DNS rebinding (R22's first rule, for the API): a loopback server without auth answers only
to loopback Host names, so a web page whose own name resolves to 127.0.0.1 cannot read the
store through the visitor's browser. With auth on, the token is the guard instead."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from loopml.server.app import create_app
from loopml.serving.server import serve_background


def _get(url: str, path: str, host: str) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_a_loopback_server_without_auth_refuses_foreign_host_names(client: Any) -> None:
    with serve_background(create_app(client)) as server:
        port = urlsplit(server.url).port
        for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1.nip.io", ""):
            status, body = _get(server.url, "/api/runs", host)
            assert status == 400, (host, status, body)
            (item,) = body["detail"]
            assert item["loc"] == ["header", "host"] and "--auth" in item["msg"]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
            status, body = _get(server.url, "/api/runs", host)
            assert status == 200 and "items" in body, (host, status, body)


def test_with_auth_any_host_name_reaches_the_token_check(client: Any) -> None:
    _, secret = client.metadata.tokens.create("reader", "reader", by="test")
    with serve_background(create_app(client, auth=True)) as server:
        status, _ = _get(server.url, "/api/runs", "api.team.example")
        assert status == 401
        status, body = _get(server.url, "/health", "api.team.example")
        assert status == 200 and body == {"status": "ok"}
