"""R23 over HTTP: every route refuses every path trick, and never serves a damaged blob.

Each pattern (from the MLflow path-traversal CVEs) is sent *raw* on a socket, so no client
normalises it first, as every path parameter of every route of the app's OpenAPI document
(reads and writes, with an admin token) and as the artifact list's ``run`` filter. Every
answer must be a 4xx; a canary file outside the store carries a unique marker that must
never appear in an answer, and its folder, bytes and access time must not change.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_read_world import detail, serving

DIGEST = "ab" * 32


def _patterns(canary: Path, store: Path) -> list[bytes]:
    rel = os.path.relpath(canary, store)
    up = "../" * 12
    texts = [
        "../../../../etc/passwd",
        "..%2f..%2f..%2fetc%2fpasswd",
        "..%2F..%2F..%2Fcanary",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%2e%2e/%2e%2e/etc/passwd",
        "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
        "..%252f..%252fetc%252fpasswd",
        "%c0%ae%c0%ae%c0%afetc%c0%afpasswd",
        "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "%e0%80%ae%e0%80%ae%e0%80%afetc",
        "..\\..\\..\\windows\\win.ini",
        "..%5c..%5cwindows%5cwin.ini",
        "%2e%2e%5c%2e%2e%5cwin.ini",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "C:%5cWindows%5cwin.ini",
        "C:/Windows/win.ini",
        "c%3a%5cwindows%5cwin.ini",
        "%5c%5cserver%5cshare%5cfile",
        "\\\\server\\share\\file",
        "file:%2f%2f%2fetc%2fpasswd",
        "file:///etc/passwd",
        "file:../../canary",
        "abcdef%23/../../etc/passwd",
        "abcdef#/../../etc/passwd",
        "abcdef?x=../../etc/passwd",
        "abcdef%3f..%2f..%2fetc%2fpasswd",
        "//proc/self/root/etc/passwd",
        "%2f%2fproc%2fself%2froot%2fetc%2fpasswd",
        "abcdef%00",
        "abcdef%00.txt",
        "..%00/etc/passwd",
        "abcdef.",
        "abcdef%20",
        "abcdef.%20",
        "CON",
        "NUL",
        "con.txt",
        "%e2%80%a4%e2%80%a4%2fetc%2fpasswd",
        "%ef%bc%8e%ef%bc%8e%ef%bc%8fetc%ef%bc%8fpasswd",
        "%e3%80%82%e3%80%82/etc/passwd",
        "....//....//etc/passwd",
        "..;/..;/etc/passwd",
        "..",
        "%2e%2e",
        "%2e",
        f"{up}{str(canary).lstrip('/')}",
        "%2f" + "%2f".join(str(canary).strip("/").split("/")),
        "..%2f" * 3 + "%2f".join(rel.split("/")),
        f"{DIGEST}/../../{rel}",
        f"{DIGEST}%2f..%2f..%2f{rel.replace('/', '%2f')}",
        f"sha256:{DIGEST}",
        DIGEST.upper(),
        DIGEST + "0",
    ]
    return [t.encode() for t in texts] + [b"abc\x00def", b"abc\x00/../../etc/passwd"]


#: Values for the other path parameters of a route: they match its pattern, name nothing.
NOTHING = {"run": "0123456789abcdef0123456789abcdef", "digest": "0" * 64, "id": "1"}


def _targets(document: dict[str, Any], pattern: bytes) -> list[tuple[bytes, bytes]]:
    """(method, target) for ``pattern`` as each path parameter of each operation in turn."""
    found = [(b"GET", b"/api/artifacts?run=" + pattern)]
    for path, item in document["paths"].items():
        names = re.findall(r"\{(\w+)\}", path)
        for method in (m for m in item if m in ("get", "post", "put", "patch", "delete")):
            for name in names:
                target = path.replace("{" + name + "}", "\0")
                target = re.sub(r"\{(\w+)\}", lambda m: NOTHING.get(m.group(1), "zz"), target)
                before, _, after = target.partition("\0")
                found.append((method.upper().encode(), before.encode() + pattern + after.encode()))
    return found


def _raw_get(
    port: int, target: bytes, method: bytes = b"GET", token: str = ""
) -> tuple[int, bytes]:
    head = b"Authorization: Bearer " + token.encode() + b"\r\n" if token else b""
    if method != b"GET":
        head += b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    else:
        head += b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(
            method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + head
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


@pytest.fixture
def store(project: Path) -> Iterator[Any]:
    from loopml.tracking.client import Client

    c = Client().open()
    with c.start_run("files") as run:
        (project / "notes.txt").write_text("kept inside the store")
        run.log_artifact(project / "notes.txt", "notes")
    yield c
    c.close()


def test_every_traversal_pattern_on_every_path_parameter_is_a_4xx(
    store: Any, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    marker = f"CANARY-{uuid.uuid4().hex}"
    canary = outside / "canary"
    canary.write_text(marker)
    os.utime(canary, (1_000_000, 2_000_000))  # atime older than mtime: any read updates it
    before = (sorted(os.listdir(outside)), canary.stat().st_atime_ns, canary.read_bytes())
    os.utime(canary, (1_000_000, 2_000_000))
    patterns = _patterns(canary, store.artifacts.local_folder)
    assert len(patterns) >= 40
    _, admin = store.metadata.tokens.create("r23-admin", "admin", by="test")
    statuses: dict[tuple[bytes, bytes], int] = {}
    with serving(store) as http:
        port = int(str(http.base_url).rsplit(":", 1)[1].rstrip("/"))
        document = http.get("/api/openapi.json").json()
        for p in patterns:
            for method, target in _targets(document, p):
                status, data = _raw_get(port, target, method, admin)
                statuses[(method, target)] = status
                assert marker.encode() not in data, target
                assert b"root:" not in data, target
    routes = {(m, re.sub(rb"\{\w+\}", b"", t)) for m, t in _targets(document, b"")}
    assert (b"POST", b"/api/models//promote") in routes  # writes are among them
    assert (b"GET", b"/api/artifacts//content") in routes
    wrong = {
        f"{m.decode()} {t.decode(errors='replace')}": s
        for (m, t), s in statuses.items()
        if not 400 <= s < 500
    }
    assert wrong == {}
    assert canary.stat().st_atime_ns == 1_000_000 * 10**9  # never opened for reading
    assert (sorted(os.listdir(outside)), canary.read_bytes()) == (before[0], before[2])


def test_a_corrupt_blob_is_refused_with_an_error_naming_it_never_served(store: Any) -> None:
    from loopml.artifacts._integrity import key_for

    digest = store.list_artifacts(limit=1)[0].digest
    blob = store.artifacts.local_folder / key_for(digest)
    good = blob.read_bytes()
    os.chmod(blob, 0o644)
    blob.write_bytes(b"X" * len(good))
    with serving(store) as http:
        got = http.get(f"/api/artifacts/{digest}/content")
        assert got.status_code == 503
        message = detail(got)
        assert digest in message and "fsck" in message
        assert str(store.artifacts.local_folder) not in message  # no server paths
        assert b"X" * 8 not in got.content
        assert http.get(f"/api/artifacts/{digest}").status_code == 200  # metadata still reads
