"""R21, safe defaults at start-up, with the real ``loopml serve`` process.

Each server is the console script next to ``sys.executable`` in a subprocess; its URL is
read from the "Serving on" line it prints once it accepts connections (a reader thread sets
an event; nothing sleeps). The flags → outcome matrix is printed at the end of the module.

- default flags bind 127.0.0.1, and SIGTERM drains: every answered prediction is logged and
  the process exits 0;
- a non-loopback ``--host`` without a token refuses to start, before loading the model, and
  says how to enable auth; a token under 16 characters is refused;
- with ``LOOPML_SERVE_TOKEN`` it serves on 0.0.0.0, every route but ``/health`` and
  ``/ready`` (``/docs`` and ``/openapi.json`` included) answers 401 without the token, and
  the app has no route beyond the documented ones;
- a missing model and a taken port are one-line errors (exit 1, no traceback).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from serve_lean import body, register_lean

from cli_runner import run_cli
from loopml.serving.logbook import predictions

MATRIX: list[tuple[str, str]] = []
JSON = {"content-type": "application/json"}
ROUTES = {"/predict", "/feedback", "/health", "/ready", "/schema", "/metrics"}


@pytest.fixture(scope="module", autouse=True)
def matrix(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None or not MATRIX:
        return
    width = max(len(flags) for flags, _ in MATRIX)
    with capture.global_and_fixture_disabled():
        print("\nR21 loopml serve: flags → outcome")
        for flags, outcome in MATRIX:
            print(f"  {flags:<{width}}  {outcome}")


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def listening(self) -> set[str]:
        """The addresses the process listens on (from the kernel, via psutil)."""
        return {
            c.laddr.ip
            for c in psutil.Process(self.proc.pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        }

    def stop(self) -> int:
        """SIGTERM, then the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def environment(token: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    env.pop("LOOPML_SERVE_TOKEN", None)
    if token is not None:
        env["LOOPML_SERVE_TOKEN"] = token
    return env


@contextmanager
def serving(*args: str, token: str | None = None) -> Iterator[Server]:
    """``loopml serve ARGS`` until it prints "Serving on URL"; killed if still running after."""
    exe = Path(sys.executable).parent / "loopml"
    proc = subprocess.Popen(
        [str(exe), "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(token),
    )
    out: list[str] = []
    err: list[str] = []
    ready = threading.Event()

    def read_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if "Serving on" in line:
                ready.set()
        ready.set()  # it exited without serving

    def read_err() -> None:
        assert proc.stderr is not None
        err.extend(proc.stderr)

    readers = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err)]
    for t in readers:
        t.start()
    try:
        ready.wait(120)
        found = re.search(r"Serving on (http://\S+)", "".join(out))
        assert found, f"loopml serve did not start: {''.join(out)} {''.join(err)}"
        yield Server(proc, found.group(1), out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        for t in readers:
            t.join(10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def refused(result: Any, *needles: str) -> None:
    """Exit 1 with ``Error: …`` naming every needle, and no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Internal error" not in result.stderr
    assert "Error: " in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


# -- the defaults -----------------------------------------------------------------------------


def test_default_flags_bind_loopback_and_sigterm_drains_the_log() -> None:
    """``--port 0`` only so that a busy 8000 on this machine cannot fail the test."""
    register_lean()
    answered: list[str] = []
    failures: list[str] = []
    enough = threading.Event()
    with serving("churn@1", "--port", "0") as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.listening() == {"127.0.0.1"}
        assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}

        def run_client(k: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                for i in range(k, 10**6, 4):
                    try:
                        r = http.post("/predict", content=body(i), headers=JSON)
                    except httpx.TransportError:
                        return  # the server stopped accepting: this client is done
                    if r.status_code != 200:
                        failures.append(f"{r.status_code}: {r.text[:200]}")
                        return
                    answered.extend(r.json()["prediction_ids"])
                    if len(answered) >= 200:
                        enough.set()

        clients = [threading.Thread(target=run_client, args=(k,)) for k in range(4)]
        for t in clients:
            t.start()
        assert enough.wait(120), (failures, server.err)
        code = server.stop()  # SIGTERM while the clients are still sending
        for t in clients:
            t.join(60)
    MATRIX.append(("(defaults) --port 0", f"serves on {server.url.rsplit(':', 1)[0]}"))
    MATRIX.append(("SIGTERM under load", f"exit {code}, {len(answered)} answered, all logged"))
    assert failures == []
    assert code == 0, "".join(server.err)
    assert "Traceback" not in "".join(server.err)
    logged = predictions("churn")
    assert len(logged) == len(answered) and set(logged["prediction_id"]) == set(answered)


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_a_non_loopback_host_without_a_token_refuses_to_start(host: str) -> None:
    """Refused before the model is loaded: the missing model is never mentioned."""
    result = run_cli("serve", "nope@production", "--host", host, env=environment(None))
    refused(result, f"Refusing to serve on {host}", "--token", "LOOPML_SERVE_TOKEN")
    assert "nope" not in result.stderr
    MATRIX.append((f"--host {host} (no token)", "exit 1: says to set --token/LOOPML_SERVE_TOKEN"))


@pytest.mark.parametrize("where", ["env", "flag"])
def test_a_short_token_is_refused(where: str) -> None:
    token = "too-short-tok"  # 13 characters
    args = ["serve", "churn@1", "--host", "0.0.0.0"]
    if where == "flag":
        args += ["--token", token]
    result = run_cli(*args, env=environment(token if where == "env" else None))
    refused(result, "13 characters", "at least 16")
    shown = "LOOPML_SERVE_TOKEN=<13 chars>" if where == "env" else "--token <13 chars>"
    MATRIX.append((f"--host 0.0.0.0 {shown}", "exit 1: token too short"))


def test_a_missing_model_is_a_clear_error() -> None:
    result = run_cli("serve", "nope@production", "--port", "0", env=environment(None))
    refused(result, "nope")
    first = result.stderr.strip().removeprefix("Error: ").split(". ")[0]
    MATRIX.append(("nope@production (no such model)", f"exit 1: {first}"))


def test_a_taken_port_is_a_clear_error() -> None:
    register_lean()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli("serve", "churn@1", "--port", str(port), env=environment(None))
    refused(result, f"Cannot listen on 127.0.0.1:{port}", "in use", "--port")
    MATRIX.append(("--port <taken>", "exit 1: Cannot listen …, pick another --port"))


# -- with a token -----------------------------------------------------------------------------


def test_with_a_token_it_serves_everywhere_and_only_with_the_token() -> None:
    register_lean()
    token = secrets.token_urlsafe(24)
    with serving("churn@1", "--host", "0.0.0.0", "--port", "0", token=token) as server:
        assert server.url.startswith("http://0.0.0.0:")
        assert server.listening() == {"0.0.0.0"}
        base = f"http://127.0.0.1:{server.port}"
        good = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, timeout=30) as http:
            for path in ("/health", "/ready"):
                assert http.get(path).status_code == 200, path
            for method, path in [
                ("POST", "/predict"),
                ("POST", "/feedback"),
                ("GET", "/schema"),
                ("GET", "/metrics"),
                ("GET", "/docs"),
                ("GET", "/openapi.json"),
                ("GET", "/docs/oauth2-redirect"),
                ("GET", "/redoc"),
                ("GET", "/nowhere"),
            ]:
                for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": token}):
                    r = http.request(method, path, content=body(0), headers={**JSON, **headers})
                    assert r.status_code == 401, (method, path, headers, r.status_code)
                    assert r.headers["www-authenticate"] == "Bearer"
                    assert "LOOPML_SERVE_TOKEN" in r.json()["detail"][0]["msg"]
            r = http.post("/predict", content=body(0), headers={**JSON, **good})
            assert r.status_code == 200, r.text
            assert http.get("/docs", headers=good).status_code == 200
            paths = set(http.get("/openapi.json", headers=good).json()["paths"])
            assert paths == ROUTES  # nothing that registers models, runs commands or reads files
        code = server.stop()
    assert code == 0, "".join(server.err)
    MATRIX.append(
        (
            "--host 0.0.0.0 LOOPML_SERVE_TOKEN=<32 chars>",
            "serves on 0.0.0.0; 401 without it (docs too); /health, /ready open",
        )
    )


def test_help_names_the_endpoints_and_examples() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for needle in [
        "POST /predict",
        "POST /feedback",
        "/health",
        "/ready",
        "/metrics",
        "/schema",
        "/docs",
        "Examples:",
        "loopml serve churn@production --port 8000",
        "--split churn@staging=10",
        "--shadow churn@staging",
        "LOOPML_SERVE_TOKEN",
        "--token",
        "127.0.0.1",
    ]:
        assert needle in text, needle
