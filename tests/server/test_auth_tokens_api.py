"""Token routes (admin), /api/whoami, and what a hostile or broken Authorization header gets.

All over real HTTP against uvicorn on loopback (``serve_background``), on SQLite: the
store's side of tokens runs on PostgreSQL too in ``test_auth_matrix.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loopml.server.app import create_app
from loopml.serving.server import serve_background

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@pytest.fixture
def served(client: Any) -> Iterator[tuple[httpx.Client, str]]:
    """An auth-on server and an admin secret."""
    _, admin = client.metadata.tokens.create("root", "admin", by="test")
    with (
        serve_background(create_app(client, auth=True)) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield http, admin


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_admin_creates_lists_and_revokes_tokens(served: tuple[httpx.Client, str]) -> None:
    http, admin = served
    made = http.post(
        "/api/tokens",
        json={"name": "ci-bot", "role": "writer", "expires_in_s": 3600},
        headers=bearer(admin),
    )
    assert made.status_code == 201
    body = made.json()
    assert body["name"] == "ci-bot" and body["role"] == "writer"
    assert body["created_by"] == "token:root"
    assert 3500 < body["expires_at"] - time.time() <= 3600
    secret = body["token"]

    me = http.get("/api/whoami", headers=bearer(secret)).json()
    assert me == {"name": "ci-bot", "role": "writer", "audit_name": "token:ci-bot"}

    listed = http.get("/api/tokens", headers=bearer(admin)).json()
    assert [t["name"] for t in listed] == ["ci-bot", "root"]
    assert all("token" not in t and "hash" not in t for t in listed)
    assert secret not in http.get("/api/tokens", headers=bearer(admin)).text

    again = http.post(
        "/api/tokens", json={"name": "ci-bot", "role": "reader"}, headers=bearer(admin)
    )
    assert again.status_code == 409
    assert "exists already" in again.json()["detail"][0]["msg"]

    revoked = http.post("/api/tokens/ci-bot/revoke", headers=bearer(admin))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = http.get("/api/whoami", headers=bearer(secret))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert http.post("/api/tokens/nobody/revoke", headers=bearer(admin)).status_code == 404


def test_a_writer_cannot_make_itself_an_admin(served: tuple[httpx.Client, str]) -> None:
    http, admin = served
    writer = http.post(
        "/api/tokens", json={"name": "w", "role": "writer"}, headers=bearer(admin)
    ).json()["token"]
    denied = http.post("/api/tokens", json={"name": "w2", "role": "admin"}, headers=bearer(writer))
    assert denied.status_code == 403
    msg = denied.json()["detail"][0]["msg"]
    assert "'w'" in msg and "writer" in msg and "needs admin" in msg


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "role": "root"},
        {"name": "../etc", "role": "reader"},
        {"name": "a" * 101, "role": "reader"},
        {"name": "x", "role": "reader", "expires_in_s": -5},
        {"role": "reader"},
    ],
)
def test_bad_token_requests_get_422_naming_the_field(
    served: tuple[httpx.Client, str], body: dict[str, Any]
) -> None:
    http, admin = served
    answer = http.post("/api/tokens", json=body, headers=bearer(admin))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][0] == "body"


def test_expired_tokens_are_refused(client: Any, served: tuple[httpx.Client, str]) -> None:
    http, _ = served
    _, old = client.metadata.tokens.create("old", "admin", by="t", expires_at=time.time() - 1)
    answer = http.get("/api/runs", headers=bearer(old))
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"][0]["msg"]


HOSTILE: list[tuple[str, Any]] = [
    ("no scheme", b"lml_abc"),
    ("basic auth", b"Basic dXNlcjpwYXNz"),
    ("bearer without a value", b"Bearer"),
    ("latin-1 bytes", b"Bearer lml_\xe9\xff\x80"),
    ("utf-8 text", "Bearer lml_żółw🐢".encode()),
    ("tab instead of space", b"Bearer\tlml_x"),
    ("control character", b"Bearer lml_\x01abc"),
    ("8 KiB secret", b"Bearer lml_" + b"A" * 8192),
    ("SQL in the secret", b"Bearer lml_' OR '1'='1"),
    ("two spaces", b"Bearer  lml_x"),
    ("a hash instead of the secret", b"Bearer " + b"0" * 64),
]


def test_malformed_authorization_gets_401_never_500(served: tuple[httpx.Client, str]) -> None:
    http, _ = served
    answers = {}
    for name, header in HOSTILE:
        answer = http.get("/api/runs", headers=[(b"Authorization", header)])
        answers[name] = answer.status_code
        if answer.status_code == 401:
            assert answer.json()["detail"][0]["msg"]
    # uvicorn's parser refuses control characters itself (400), before the app sees them.
    assert answers == {name: 400 if name == "control character" else 401 for name, _ in HOSTILE}


def test_interactive_docs_and_schema_need_a_token_when_auth_is_on(
    served: tuple[httpx.Client, str], client: Any
) -> None:
    http, admin = served
    for path in ("/api/docs", "/api/openapi.json"):
        assert http.get(path).status_code == 401
        assert http.get(path, headers=bearer(admin)).status_code == 200
    for path in ("/docs", "/redoc", "/openapi.json"):  # FastAPI's defaults are off
        assert http.get(path).status_code == 404
    with serve_background(create_app(client, auth=False)) as server:
        assert httpx.get(server.url + "/api/openapi.json").status_code == 200


def test_last_used_is_written_once_under_load(client: Any) -> None:
    _, secret = client.metadata.tokens.create("busy", "reader", by="t")
    db = client.metadata.db
    writes: list[float] = []

    def used() -> Any:
        return db.read(
            lambda tx: tx.scalar("SELECT last_used_at FROM api_tokens WHERE name = 'busy'")
        )

    with serve_background(create_app(client, auth=True)) as server:
        start = threading.Barrier(8)

        def hammer() -> None:
            with httpx.Client(base_url=server.url, headers=bearer(secret)) as http:
                start.wait()
                for _ in range(15):
                    assert http.get("/api/whoami").status_code == 200
                    writes.append(used())

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # 120 requests, one write: every reader saw the same last_used_at once it was set.
    assert len({w for w in writes if w is not None}) == 1
    record = client.metadata.tokens.get("busy")
    assert record.last_used_at is not None and record.last_used_at <= time.time()
