"""R23 over HTTP: artifact routes refuse every path trick, and never serve a damaged blob.

Each pattern (from the MLflow path-traversal CVEs) is sent *raw* on a socket, so no client
normalises it first, to every artifact route. Every answer must be a 4xx; a canary file
outside the store carries a unique marker that must never appear in an answer, and its
folder, bytes and access time must not change.
"""

from __future__ import annotations

import os
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


def _raw_get(port: int, target: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
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


def test_every_traversal_pattern_on_every_artifact_route_is_a_4xx(
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
    statuses: dict[tuple[bytes, bytes], int] = {}
    with serving(store) as http:
        port = int(str(http.base_url).rsplit(":", 1)[1].rstrip("/"))
        for p in patterns:
            for target in (
                b"/api/artifacts/" + p,
                b"/api/artifacts/" + p + b"/content",
                b"/api/artifacts/" + p + b"/lineage",
                b"/api/artifacts?run=" + p,
                b"/api/runs/" + p + b"/artifacts",
            ):
                status, data = _raw_get(port, target)
                statuses[(p, target)] = status
                assert marker.encode() not in data, target
                assert b"root:" not in data, target
    wrong = {t.decode(errors="replace"): s for (_, t), s in statuses.items() if not 400 <= s < 500}
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
