"""R21 for ``loopml server``: safe defaults at start-up, checked on the real command.

Flags → outcome:

| flags                           | outcome                                              |
|---------------------------------|------------------------------------------------------|
| (defaults)                      | binds 127.0.0.1; reads open, writes need a token     |
| --host 0.0.0.0                  | refuses: exit 1, says to use --auth + token create   |
| --host 0.0.0.0 --auth           | starts; every /api route (docs too) needs a token    |
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from _apiwrite_helpers import CliServer, token

from cli_runner import run_cli
from loopml.tracking.client import Client


def test_defaults_bind_loopback_and_writes_still_need_a_token(project: Path) -> None:
    server = CliServer("--port", "0", "--no-scheduler", cwd=project).started()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{server.url}/api/runs").status_code == 200
        assert httpx.post(f"{server.url}/api/runs", json={}).status_code == 401
    finally:
        assert server.stop() == 0  # SIGTERM is the orderly stop


def test_a_public_host_without_auth_is_refused_with_how_to_enable_it(project: Path) -> None:
    done = run_cli(  # refused before it opens anything
        "server", "--host", "0.0.0.0", "--port", "0", cwd=project, timeout=60
    )
    assert done.returncode == 1
    assert "Refusing to serve the API on 0.0.0.0" in done.stderr
    assert "--auth" in done.stderr and "loopml token create" in done.stderr
    help_text = run_cli("server", "--help", cwd=project).stdout
    assert re.search(r"--host TEXT\s+Address to listen on.\s+\[default: 127.0.0.1\]", help_text)


def test_with_auth_on_a_public_host_every_api_route_and_the_docs_need_a_token(
    project: Path,
) -> None:
    client = Client().open()  # the token is in the store before the server starts
    reader = token(client, "dash", "reader")
    client.close()
    server = CliServer(
        "--host", "0.0.0.0", "--auth", "--port", "0", "--no-scheduler", cwd=project
    ).started()
    try:
        url = server.url.replace("0.0.0.0", "127.0.0.1")
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/health").status_code == 200
            for path in ("/api/docs", "/api/openapi.json"):
                assert http.get(path).status_code == 401
                assert http.get(path, headers=reader).status_code == 200
            spec = http.get("/api/openapi.json", headers=reader).json()
            assert spec["paths"], "the API documents its routes"
            api_paths = {p: m for p, m in spec["paths"].items() if p.startswith("/api/")}
            assert set(spec["paths"]) - set(api_paths) == {"/health"}
            for path, methods in api_paths.items():
                concrete = re.sub(r"\{[^}]+\}", "x", path)
                for method in methods:
                    answer = http.request(method.upper(), concrete, json={})
                    assert answer.status_code == 401, (method, path, answer.text)
            assert http.get("/api/runs", headers=reader).status_code == 200
            refused = http.post("/api/runs", json={}, headers=reader)
            assert refused.status_code == 403
    finally:
        server.stop()
