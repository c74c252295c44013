"""R25: no route lets a caller make the server fetch a location of their choosing.

Every parameter and request-body field of every operation in the app's OpenAPI document is
enumerated (``$ref``s, nested objects and arrays followed). A field that could hold a
location (by name: url, uri, source, root, ...; or by format: uri, hostname) is then sent
each SSRF payload with an admin token: cloud metadata, loopback, RFC 1918, ``file:``
outside the store, ``gopher:``, and a loopback listener of the test's own that would see
any connection. Pass: each is refused with a 4xx and the listener gets 0 connections.

Today no route takes a location, so the sending half has nothing to send; it is proved on
a route added by the test itself, so a location field added to the API later is caught.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from loopml.server.app import create_app
from loopml.serving.server import serve_background

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

LOCATION_NAME = re.compile(
    r"(^|_)(url|uri|urls|uris|href|source|location|root|endpoint|remote|host|address|"
    r"webhook|callback|fetch|import_from|from_url)($|_)",
    re.I,
)
LOCATION_FORMATS = {"uri", "url", "iri", "uri-reference", "iri-reference", "hostname"}
METHODS = {"get", "put", "post", "delete", "patch"}


@dataclass(frozen=True)
class LocationField:
    method: str
    path: str
    where: str  # "query", "path", "header" or "body"
    name: str  # dotted for nested body fields


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _body_fields(
    document: dict[str, Any], schema: dict[str, Any], prefix: str, seen: frozenset[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    ref = schema.get("$ref", "")
    if ref in seen:
        return
    schema = _resolve(document, schema)
    seen = seen | {ref}
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            yield from _body_fields(document, sub, prefix, seen)
    if "items" in schema:
        yield from _body_fields(document, schema["items"], prefix + "[]", seen)
    for name, sub in schema.get("properties", {}).items():
        dotted = f"{prefix}.{name}" if prefix else name
        yield dotted, _resolve(document, sub)
        yield from _body_fields(document, sub, dotted, seen)


def _looks_like_location(name: str, schema: dict[str, Any]) -> bool:
    formats = {schema.get("format")} | {s.get("format") for s in schema.get("anyOf", [])}
    return bool(LOCATION_NAME.search(name.split(".")[-1]) or formats & LOCATION_FORMATS)


def location_fields(document: dict[str, Any]) -> tuple[list[LocationField], int]:
    """Fields that could name a location to fetch, and how many fields were looked at."""
    found, looked = [], 0
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for param in op.get("parameters", []):
                looked += 1
                if _looks_like_location(param["name"], param.get("schema", {})):
                    found.append(LocationField(method.upper(), path, param["in"], param["name"]))
            for media in op.get("requestBody", {}).get("content", {}).values():
                for name, schema in _body_fields(
                    document, media.get("schema", {}), "", frozenset()
                ):
                    looked += 1
                    if _looks_like_location(name, schema):
                        found.append(LocationField(method.upper(), path, "body", name))
    return found, looked


class Listener:
    """A TCP listener on loopback that counts the connections it gets."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def payloads(port: int) -> list[str]:
    return [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        f"http://127.0.0.1:{port}/",
        f"http://localhost:{port}/redirect?to=http://169.254.169.254/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{port}/_GET%20/",
        f"ftp://127.0.0.1:{port}/x",
    ]


def _minimal(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A small instance of ``schema`` with every required field."""
    schema = _resolve(document, schema)
    if "anyOf" in schema:
        return _minimal(document, schema["anyOf"][0])
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _minimal(document, props[k]) for k in schema.get("required", [])}
    return {"integer": 1, "number": 1.0, "boolean": True, "array": []}.get(str(kind), "x")


def _set(body: dict[str, Any], dotted: str, value: str) -> None:
    *parents, last = dotted.replace("[]", "").split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[last] = value


def attack(
    base_url: str, admin: str, document: dict[str, Any], fields: list[LocationField]
) -> tuple[int, list[str]]:
    """Send every payload to every field; (attempts, answers that were not a 4xx)."""
    listener = Listener()
    attempts, accepted = 0, []
    try:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {admin}"}) as http:
            for field in fields:
                op = document["paths"][field.path][field.method.lower()]
                content = op.get("requestBody", {}).get("content", {})
                for payload in payloads(listener.port):
                    url = re.sub(r"\{[^}]+\}", "zz-no-such", field.path)
                    params, headers, body = {}, {}, None
                    if "application/json" in content:
                        body = _minimal(document, content["application/json"]["schema"])
                    if field.where == "body":
                        _set(body, field.name, payload)
                    elif field.where == "query":
                        params[field.name] = payload
                    elif field.where == "header":
                        headers[field.name] = payload
                    else:
                        url = field.path.replace(
                            "{" + field.name + "}", payload.replace("/", "%2F")
                        )
                    answer = http.request(
                        field.method, url, params=params, headers=headers, json=body
                    )
                    attempts += 1
                    if not 400 <= answer.status_code < 500:
                        accepted.append(
                            f"{field} <- {payload}: {answer.status_code} {answer.text[:120]}"
                        )
    finally:
        listener.close()
    assert listener.connections == 0, f"the server connected out {listener.connections} times"
    return attempts, accepted


def test_no_route_takes_a_location_to_fetch(client: Any) -> None:
    _, admin = client.metadata.tokens.create("ssrf-admin", "admin", by="test")
    app = create_app(client, auth=True)
    document = app.openapi()
    fields, looked = location_fields(document)
    with serve_background(app) as server:
        attempts, accepted = attack(server.url, admin, document, fields)
    print(
        f"\nR25 fields looked at {looked}; location fields {len(fields)}; attempts {attempts}; outbound connections 0"
    )
    assert looked > 5
    assert accepted == [], "\n".join(accepted)


class Register(BaseModel):
    """A body someone might add: a model version registered from a URL."""

    name: str
    source: str


def test_a_location_field_added_later_is_found_and_attacked(client: Any) -> None:
    """The two halves above, on a route that takes a URL and rejects every location."""

    _, admin = client.metadata.tokens.create("ssrf-admin2", "admin", by="test")
    app = create_app(client, auth=True)

    @app.post("/api/models-from-url")
    def register_from_url(body: Register) -> dict[str, str]:
        if re.match(r"^[a-z]+:", body.source):
            from fastapi import HTTPException

            raise HTTPException(400, "locations are not accepted")
        return {"ok": body.source}

    document = app.openapi()
    fields, _ = location_fields(document)
    assert LocationField("POST", "/api/models-from-url", "body", "source") in fields
    with serve_background(app) as server:
        attempts, accepted = attack(server.url, admin, document, fields)
    assert attempts == len(payloads(0)) * len(fields) and accepted == []
