"""R19 (body, row and nesting limits of /predict) and R26 (nothing a client sends is
unpickled), plus the token guard, all over real HTTP.

R19 report (``-s``): peak growth of this process's RSS (the server runs in it) while a
1 GiB chunked upload is attempted against a 16 MiB cap, and the time to the 413.
R26 report: routes × content types probed, and canary fires (must be 0).
"""

from __future__ import annotations

import base64
import inspect
import io
import json
import pickle
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from loopml.serving import asgi as asgi_module
from loopml.serving.app import create_app
from loopml.serving.bodies import Limits
from serve_server import churn_frame, register_classifier, running

MiB = 1024 * 1024
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as c:
        yield c


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def _response(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the one response on ``sock`` (read until it closes or the
    body of Content-Length is complete)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ")[1]), body


# -- R19 -----------------------------------------------------------------------------------


def test_content_length_over_the_cap_is_413_before_the_body_is_sent() -> None:
    register_classifier()
    app = create_app("churn", runtime="native", limits=Limits(max_body_bytes=MiB), log_sample=0)
    with running(app) as url, _connect(url) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {64 * MiB}\r\n\r\n".encode()
            + b"[" * 1000
        )
        status, body = _response(sock)  # answered though 63 MiB of the body never came
    assert status == 413
    detail = json.loads(body)["detail"]
    assert detail[0]["loc"] == ["body"] and "1,048,576 bytes" in detail[0]["msg"]


def test_a_chunked_gigabyte_is_stopped_at_the_cap_in_flat_memory() -> None:
    register_classifier()
    cap = 16 * MiB
    app = create_app("churn", runtime="native", limits=Limits(max_body_bytes=cap), log_sample=0)
    me = psutil.Process()
    chunk = b"[" + b"0," * (MiB // 2 - 1) + b"0"  # 1 MiB of JSON-looking bytes
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with running(app) as url, _connect(url) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        base = peak = me.memory_info().rss
        started = time.perf_counter()
        sent = 0
        answered = False
        while sent < 1024 * MiB:
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed
            sent += len(chunk)
            peak = max(peak, me.memory_info().rss)
            if select.select([sock], [], [], 0)[0]:
                answered = True
                break
        took = time.perf_counter() - started
        status, body = _response(sock) if answered or sent < 1024 * MiB else (0, b"")
    growth = (peak - base) / MiB
    print(
        f"R19 chunked: {sent / MiB:.0f} MiB sent of a 1 GiB attempt, answered {status} after "
        f"{took * 1000:.0f} ms; peak RSS growth {growth:.1f} MiB (cap 16 MiB + 50 MB allowed)"
    )
    assert status == 413, body[:300]
    assert sent < 1024 * MiB
    assert peak - base < cap + 50 * 1000 * 1000


def test_json_nested_100000_deep_is_refused(http: httpx.Client) -> None:
    register_classifier()
    app = create_app("churn", runtime="native", log_sample=0)
    deep = b"[" * 100_000 + b"]" * 100_000
    wrapped = b'{"records": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}"
    with running(app) as url:
        answers = [
            http.post(f"{url}/predict", content=body, headers=JSON) for body in (deep, wrapped)
        ]
        answers.append(http.post(f"{url}/feedback", content=deep, headers=JSON))
        alive = http.get(f"{url}/health")
    for r in answers:
        assert r.status_code == 400, r.text[:300]
        assert r.json()["detail"][0]["loc"] == ["body"]
        assert "JSON" in r.json()["detail"][0]["msg"]
    assert alive.status_code == 200


def test_rows_over_max_rows_are_413_in_every_format(http: httpx.Client) -> None:
    register_classifier()
    X, _ = churn_frame(101, seed=2)
    records = X.to_dict("records")
    buffer = io.BytesIO()
    X.to_parquet(buffer, index=False)
    bodies = {
        "records": (json.dumps(records).encode(), "application/json"),
        "columns": (
            json.dumps({"columns": list(X.columns), "data": X.values.tolist()}).encode(),
            "application/json",
        ),
        "inputs": (
            json.dumps({"inputs": {c: X[c].tolist() for c in X.columns}}).encode(),
            "application/json",
        ),
        "csv": (X.to_csv(index=False).encode(), "text/csv"),
        "parquet": (buffer.getvalue(), "application/vnd.apache.parquet"),
    }
    limits = Limits(max_rows=100)
    app = create_app("churn", runtime="native", limits=limits, log_sample=0)
    with running(app) as url:
        answers = {
            k: http.post(f"{url}/predict", content=b, headers={"content-type": t})
            for k, (b, t) in bodies.items()
        }
        fits = http.post(f"{url}/predict", json=records[:100])
        fb = [{"prediction_id": f"a-{i}", "label": 1} for i in range(101)]
        feedback = http.post(f"{url}/feedback", json=fb)
    for name, r in answers.items():
        assert r.status_code == 413, (name, r.text[:300])
        assert "101" in r.json()["detail"][0]["msg"] and "100" in r.json()["detail"][0]["msg"]
    assert fits.status_code == 200 and len(fits.json()["predictions"]) == 100
    assert feedback.status_code == 413


def test_a_parquet_footer_over_the_row_limit_is_413_without_reading_the_data(
    http: httpx.Client,
) -> None:
    register_classifier()
    X, _ = churn_frame(5_000, seed=4)
    buffer = io.BytesIO()
    X.to_parquet(buffer, index=False, compression=None)
    data = bytearray(buffer.getvalue())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    # Overwrite the column data (everything between the magic and the footer) with junk: only
    # a server that reads just the footer can still answer 413 rather than 400.
    data[4 : len(data) - footer] = b"\xff" * (len(data) - footer - 4)
    broken = bytes(data)
    app = create_app("churn", runtime="native", limits=Limits(max_rows=1_000), log_sample=0)
    parquet = {"content-type": "application/vnd.apache.parquet"}
    with running(app) as url:
        r = http.post(f"{url}/predict", content=broken, headers=parquet)
    assert r.status_code == 413, r.text[:300]
    assert "5,000 rows" in r.json()["detail"][0]["msg"]


# -- R26 -----------------------------------------------------------------------------------


class Canary:
    """Unpickling this creates ``path`` (the proof that something ran it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _probes(payload: bytes) -> dict[str, dict[str, Any]]:
    """The canary under every content type a server might be tempted to unpickle."""
    b64 = base64.b64encode(payload).decode()
    return {
        "python-pickle": {
            "content": payload,
            "headers": {"content-type": "application/python-pickle"},
        },
        "x-pickle": {"content": payload, "headers": {"content-type": "application/x-pickle"}},
        "octet-stream": {
            "content": payload,
            "headers": {"content-type": "application/octet-stream"},
        },
        "no-content-type": {"content": payload, "headers": {}},
        "pickle-as-json": {"content": payload, "headers": JSON},
        "pickle-as-csv": {"content": payload, "headers": {"content-type": "text/csv"}},
        "pickle-as-parquet": {
            "content": payload,
            "headers": {"content-type": "application/vnd.apache.parquet"},
        },
        "multipart-pkl": {"files": {"file": ("model.pkl", payload, "application/octet-stream")}},
        "base64-in-json": {
            "content": json.dumps(
                {"records": [{"age": b64, "income": b64, "plan": b64}], "pickle": b64}
            ).encode(),
            "headers": JSON,
        },
        "base64-field": {
            "content": json.dumps({"pickle": b64, "data": b64}).encode(),
            "headers": JSON,
        },
    }


def test_r26_a_pickle_canary_never_fires_on_any_route(http: httpx.Client, tmp_path: Path) -> None:
    register_classifier()
    canary = tmp_path / "canary-fired"
    payload = pickle.dumps(Canary(canary))
    pickle.loads(payload).close()  # the canary works: loading it does create the file
    assert canary.exists()
    canary.unlink()
    app = create_app("churn", runtime="native")
    routes = [(r.path, sorted(r.methods or ())) for r in app.routes if hasattr(r, "methods")]
    assert {"/predict", "/feedback", "/health", "/ready", "/schema", "/metrics"} <= {
        p for p, _ in routes
    }
    probes = _probes(payload)
    outcomes = []
    with running(app) as url:
        for path, methods in routes:
            for name, request in probes.items():
                r = http.post(f"{url}{path}", **request)
                outcomes.append((path, name, r.status_code))
                assert 400 <= r.status_code < 500, (path, methods, name, r.text[:300])
                assert r.status_code != 405 or "POST" not in methods
                assert "Traceback" not in r.text
    print(
        f"R26: {len(routes)} routes × {len(probes)} content types = {len(outcomes)} probes, "
        f"canary fires {int(canary.exists())}"
    )
    assert not canary.exists()
    predict = {n: s for p, n, s in outcomes if p == "/predict"}
    assert predict["python-pickle"] == predict["multipart-pkl"] == 415


# -- the token guard -----------------------------------------------------------------------


def test_a_token_guards_every_route_but_the_probes(http: httpx.Client) -> None:
    register_classifier()
    token = "s3cret-token-0123456789abcdef"
    app = create_app("churn", runtime="native", token=token)
    X, _ = churn_frame(3, seed=9)
    valid = {
        "/predict": {"json": X.to_dict("records")},
        "/feedback": {"json": {"prediction_id": "a-1", "label": 1}},
    }
    routes = [(r.path, sorted(r.methods or ())) for r in app.routes if hasattr(r, "methods")]
    results = []
    with running(app) as url:
        for path, methods in routes:
            method = "POST" if "POST" in methods else "GET"
            for auth in (None, "Bearer wrong-token-0123456789", f"Token {token}", token):
                headers = {} if auth is None else {"authorization": auth}
                r = http.request(method, f"{url}{path}", headers=headers, **valid.get(path, {}))
                results.append((path, auth, r.status_code))
            for good in (f"Bearer {token}", f"bearer {token}"):  # the scheme's case is free
                headers = {"authorization": good}
                r = http.request(method, f"{url}{path}", headers=headers, **valid.get(path, {}))
                results.append((path, "good", r.status_code))
    for path, auth, status in results:
        if auth == "good" or path in ("/health", "/ready"):
            assert status == 200, (path, auth, status)
        else:
            assert status == 401, (path, auth, status)
    assert len({p for p, _ in routes}) == len(results) // 6


def test_the_token_is_compared_in_constant_time() -> None:
    source = inspect.getsource(asgi_module.TokenGuard)
    assert "hmac.compare_digest(" in source
    assert "== self.expected" not in source and "!= self.expected" not in source
