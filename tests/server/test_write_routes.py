"""The write routes over real HTTP: trigger a pipeline, promote and roll back through gates,
post feedback; who may call them; and what a too-large or too-deep body gets (R19).

Every test runs the API on uvicorn on 127.0.0.1 and talks to it with httpx.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _apiwrite_helpers import api, token, wait_for
from fastapi.routing import iter_route_contexts

import loopml
from loopml.store import RunStatus
from loopml.store.predictions import PredictionRow

PIPELINES = '''
import loopml
from loopml import pipeline, step


@step
def double(x: int) -> int:
    loopml.log_metric("doubled", 2 * x)
    return 2 * x


@pipeline
def twice(x: int = 2, label: str = "a"):
    """Double x, and log it."""
    double(x)
'''

GATES = """
[project]
name = "t"

[models.m.gates.production]
checks = ["gate_checks:second_or_later"]
"""

CHECKS = '''
def second_or_later(version):
    """A gate a team might write: only versions from the second on may serve."""
    return version.number >= 2
'''


@pytest.fixture
def pipelines(project: Path) -> Iterator[Path]:
    (project / "pipelines.py").write_text(PIPELINES)
    (project / "loopml.toml").write_text(GATES)
    (project / "gate_checks.py").write_text(CHECKS)
    sys.path.insert(0, str(project))  # as `loopml server` does (loopml.server.run)
    # A module of that name imported by an earlier test in this worker (another project's,
    # or the tests/pipelines folder as a namespace package) would be found first.
    for name in ("pipelines", "gate_checks"):
        sys.modules.pop(name, None)
    yield project
    for name in ("pipelines", "gate_checks"):
        sys.modules.pop(name, None)
    while str(project) in sys.path:
        sys.path.remove(str(project))


def test_a_triggered_run_starts_in_a_child_succeeds_and_names_the_caller(pipelines: Path) -> None:
    with api() as (server, client), httpx.Client(base_url=server.url, timeout=120) as http:
        writer = token(client, "ci", "writer")
        listed = http.get("/api/pipelines").json()
        assert [p["name"] for p in listed] == ["twice"]
        assert listed[0]["params"][0] == {
            "name": "x",
            "type": "int",
            "required": False,
            "default": 2,
        }
        assert listed[0]["description"] == "Double x, and log it." and listed[0]["last_run"] is None

        r = http.post("/api/pipelines/twice/runs", json={"params": {"x": 5}}, headers=writer)
        assert r.status_code == 202, r.text
        run_id = r.json()["run"]
        assert r.json()["url"] == f"/api/runs/{run_id}" == r.headers["location"]

        def finished() -> dict | None:
            got = http.get(f"/api/runs/{run_id}").json()
            return got if got["status"] != RunStatus.RUNNING else None

        run = wait_for(finished, timeout=90)
        assert run["status"] == RunStatus.SUCCEEDED, run["error"]
        assert run["metrics"]["doubled"] == 10 and run["params"]["x"] == "5"
        assert run["tags"]["triggered_by"] == "token:ci"
        last = http.get("/api/pipelines").json()[0]["last_run"]
        assert last["id"] == run_id and last["status"] == RunStatus.SUCCEEDED
        assert last["duration_s"] > 0


def test_a_trigger_is_refused_before_any_process_starts(pipelines: Path) -> None:
    with api() as (server, client), httpx.Client(base_url=server.url, timeout=60) as http:
        writer = token(client, "ci", "writer")
        unknown = http.post("/api/pipelines/thrice/runs", json={}, headers=writer)
        assert unknown.status_code == 404 and "['twice']" in unknown.json()["detail"][0]["msg"]
        for params, named in (({"x": "five"}, "'x'"), ({"y": 1}, "'y'")):
            bad = http.post("/api/pipelines/twice/runs", json={"params": params}, headers=writer)
            assert bad.status_code == 400, bad.text
            assert named in bad.json()["detail"][0]["msg"]
        shape = http.post("/api/pipelines/twice/runs", json={"params": [1]}, headers=writer)
        assert shape.status_code == 422 and shape.json()["detail"][0]["loc"] == ["body", "params"]
        assert http.post("/api/pipelines/twice/runs", json={}).status_code == 401
        reader = token(client, "dash", "reader")
        forbidden = http.post("/api/pipelines/twice/runs", json={}, headers=reader)
        assert forbidden.status_code == 403 and "writer" in forbidden.json()["detail"][0]["msg"]
        assert client.search_runs() == []


def test_promotion_goes_through_the_gates_and_the_history_names_the_token(
    pipelines: Path,
) -> None:
    first, _ = loopml.register("m", {"weights": [1]})
    second, _ = loopml.register("m", {"weights": [2]})
    with api() as (server, client), httpx.Client(base_url=server.url, timeout=60) as http:
        writer = token(client, "release-bot", "writer")
        refused = http.post(
            "/api/models/m/promote", json={"version": 1, "to": "production"}, headers=writer
        )
        assert refused.status_code == 409, refused.text
        gates = refused.json()["promotion"]["gates"]
        assert gates == [
            {
                "gate": "check gate_checks:second_or_later",
                "required": "True",
                "observed": "False",
                "passed": False,
            }
        ]
        assert "Nothing moved" in refused.json()["detail"][0]["msg"]
        assert client.model_aliases("m") == {}

        forced = {"version": 1, "to": "production", "force": True, "reason": "hotfix"}
        assert http.post("/api/models/m/promote", json=forced, headers=writer).status_code == 403
        admin = token(client, "ops", "admin")
        moved = http.post("/api/models/m/promote", json=forced, headers=admin)
        assert moved.status_code == 200 and moved.json()["forced"] is True

        dry = http.post(
            "/api/models/m/promote",
            json={"version": 2, "to": "production", "dry_run": True},
            headers=writer,
        )
        assert dry.json()["passed"] is True and dry.json()["moved"] is False
        assert client.model_aliases("m") == {"production": first.number}
        passed = http.post(
            "/api/models/m/promote",
            json={"version": str(second.number), "to": "production", "reason": "better"},
            headers=writer,
        )
        assert passed.status_code == 200, passed.text
        assert passed.json()["moved"] is True and passed.json()["by"] == "token:release-bot"
        assert client.model_aliases("m") == {"production": second.number}

        back = http.post(
            "/api/models/m/rollback", json={"alias": "production", "reason": "bad"}, headers=writer
        )
        assert back.status_code == 200, back.text
        assert back.json()["to_version"] == first.number
        assert client.model_aliases("m") == {"production": first.number}
        history = client.alias_history("m", "production")
        assert [(e.action, e.by) for e in history] == [
            ("promote", "token:ops"),
            ("promote", "token:release-bot"),
            ("rollback", "token:release-bot"),
        ]
        assert history[0].forced and history[0].reason == "hotfix"

        unknown = http.post(
            "/api/models/nope/promote", json={"version": 1, "to": "production"}, headers=writer
        )
        assert unknown.status_code == 404
        bad_alias = http.post(
            "/api/models/m/promote", json={"version": 2, "to": "pro duction"}, headers=writer
        )
        assert bad_alias.status_code == 400 and "Alias" in bad_alias.json()["detail"][0]["msg"]
        reader = token(client, "dash", "reader")
        no = http.post("/api/models/m/rollback", json={"alias": "production"}, headers=reader)
        assert no.status_code == 403


def test_feedback_lands_in_the_prediction_log_like_the_serving_apps(project: Path) -> None:
    with api() as (server, client), httpx.Client(base_url=server.url, timeout=60) as http:
        client.metadata.predictions.add(
            [PredictionRow(f"p-{i}", "m", 1, "m@1", 1.0 + i, "{}", "0") for i in range(3)]
        )
        writer = token(client, "labeller", "writer")
        one = http.post(
            "/api/predictions/feedback", json={"prediction_id": "p-0", "label": 1}, headers=writer
        )
        assert one.status_code == 200 and one.json() == {"accepted": 1}
        many = http.post(
            "/api/predictions/feedback",
            json={"feedback": [{"prediction_id": "p-1", "label": "churned"}]},
            headers=writer,
        )
        assert many.json() == {"accepted": 1}
        labels = {r.id: r.label for r in client.metadata.predictions.query("m")}
        assert labels == {"p-0": "1", "p-1": '"churned"', "p-2": None}

        bad = http.post(
            "/api/predictions/feedback",
            json=[{"prediction_id": "p-2", "label": [1]}],
            headers=writer,
        )
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", 0, "label"]
        text = http.post(
            "/api/predictions/feedback",
            content=b"p-2,1",
            headers={**writer, "content-type": "text/csv"},
        )
        assert text.status_code == 415
        anonymous = http.post(
            "/api/predictions/feedback", json={"prediction_id": "p-2", "label": 0}
        )
        assert anonymous.status_code == 401


#: Path values that match each parameter's pattern but name nothing, so a body that got
#: through would fail on the missing object instead of changing the store.
NOTHING = {"run": "0123456789abcdef0123456789abcdef", "digest": "0" * 64}


def write_routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, URL) of ``app`` that takes a body, enumerated from the app itself."""
    found = []
    for ctx in iter_route_contexts(app.routes):
        for method in sorted((ctx.methods or set()) - {"GET", "HEAD", "OPTIONS"}):
            url = re.sub(r"\{(\w+)\}", lambda m: NOTHING.get(m.group(1), "zz-no-such"), ctx.path)
            found.append((method, url))
    return found


def test_r19_every_write_route_refuses_bodies_over_the_cap_or_too_deep_with_a_4xx(
    project: Path,
) -> None:
    """Over the cap with Content-Length and chunked: 413 before it is kept; 100,000-deep
    JSON or a cut-off body: a 4xx naming the problem; never a 5xx, on every write route."""
    from loopml.server.api.limits import MAX_BODY_BYTES

    with api() as (server, client), httpx.Client(base_url=server.url, timeout=60) as http:
        admin = {**token(client, "w", "admin"), "content-type": "application/json"}
        routes = write_routes(server.app)
        assert ("POST", "/api/runs") in routes and ("POST", "/api/tokens") in routes
        for method, url in routes:
            where = f"{method} {url}"
            declared = http.request(
                method, url, content=b"[" * (MAX_BODY_BYTES + 1), headers=admin
            )  # Content-Length over the cap
            assert declared.status_code == 413, (where, declared.text)
            assert "limit" in declared.json()["detail"][0]["msg"], where

            sent = 0

            def stream() -> Iterator[bytes]:  # chunked: no Content-Length; stop early if refused
                nonlocal sent
                chunk = b" " * (1024 * 1024)
                while sent < 4 * MAX_BODY_BYTES:
                    sent += len(chunk)
                    yield chunk

            try:
                chunked = http.request(method, url, content=stream(), headers=admin)
                assert chunked.status_code == 413, (where, chunked.text)
            except httpx.WriteError:
                pass  # the server answered 413 and closed before the client sent it all

            for body in (b"[" * 100_000 + b"]" * 100_000, b'{"params": {"a": 1}'):
                refused = http.request(method, url, content=body, headers=admin)
                assert 400 <= refused.status_code < 500, (where, refused.text)
                if refused.headers["content-type"].startswith("application/json"):
                    assert refused.json()["detail"][0]["msg"], where
                else:  # a web UI form route answers with an HTML page that explains
                    assert not url.startswith("/api/"), where
                    assert '<p class="message">' in refused.text, where
        assert http.get("/health").json() == {"status": "ok"}
