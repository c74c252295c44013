"""The schedule routes over real HTTP: the library's answers, paging, writes with the
caller's audit name, roles, and loopml.toml schedules refused (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from _apiwrite_helpers import api, token

from loopml.scheduler import schedules as lib
from loopml.store.status import FireStatus
from loopml.tracking.client import Client

T0 = 1_717_200_000.0
PIPELINES = """
from loopml import pipeline, step


@step
def measure(region: str) -> int:
    return len(region)


@pipeline
def score(region: str = "south"):
    return measure(region=region)
"""
TOML = """[project]
name = "t"

[schedules.from-file]
pipeline = "score"
cron = "0 6 * * MON"
"""


def _chain(http: httpx.Client, url: str, headers: dict[str, str]) -> list[Any]:
    """Every item of a paginated list, two at a time, following ``next_offset``."""
    items: list[Any] = []
    offset: int | None = 0
    while offset is not None:
        answer = http.get(url, params={"limit": 2, "offset": offset}, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["items"]) <= 2
        items += body["items"]
        offset = body["next_offset"]
    return items


def test_schedule_routes_answer_like_the_library(project: Path) -> None:
    (project / "pipelines.py").write_text(PIPELINES)
    with api(auth=True) as (server, client), httpx.Client(base_url=server.url) as http:
        read = token(client, "viewer", "reader")
        write = token(client, "ops", "writer")
        admin = token(client, "root", "admin")
        for i, cron in enumerate(["0 6 * * MON", "*/5 * * * *", "30 2 * * *"]):
            record = lib.make_record(f"s{i}", pipeline="score", cron=cron, params={"region": "n"})
            lib.add(client, record, check=False)
        made = http.post(
            "/api/schedules",
            json={"name": "nightly", "pipeline": "score", "cron": "0 3 * * *",
                  "timezone": "Europe/Berlin", "params": {"region": "east"}, "retries": 2},
            headers=admin,
        )  # fmt: skip
        assert made.status_code == 201, made.text
        assert made.json()["updated_by"] == "token:root"
        for k in range(3):
            lib.run_now(client, "s1", by="me", now=T0 + k)

        expected = [i.to_json() for i in lib.list_schedules(client, sync=False)]
        assert [s["name"] for s in expected] == ["nightly", "s0", "s1", "s2"]
        assert _chain(http, "/api/schedules", read) == expected
        one = http.get("/api/schedules/nightly", headers=read)
        assert one.json() == lib.get(client, "nightly").to_json()
        assert one.json()["next_fire"] and one.json()["params"] == {"region": "east"}
        fires = _chain(http, "/api/schedules/s1/fires", read)
        assert fires == [lib.fire_json(v) for v in lib.fires(client, "s1", limit=100)]
        assert len(fires) == 3 and fires[0]["due"] > fires[-1]["due"]  # newest first

        paused = http.post("/api/schedules/s0/pause", headers=write)
        assert paused.status_code == 200 and paused.json()["paused"] is True
        stored = client.metadata.schedules.get("s0")
        assert stored.paused and stored.updated_by == "token:ops"
        assert paused.json()["next_fire"] is None
        resumed = http.post("/api/schedules/s0/resume", headers=write)
        assert resumed.json()["paused"] is False and resumed.json()["next_fire"]
        assert not client.metadata.schedules.get("s0").paused
        fired = http.post("/api/schedules/s0/run-now", headers=write)
        assert fired.status_code == 202, fired.text
        fire = client.metadata.schedules.fires.get(fired.json()["id"])
        assert (fire.kind, fire.status, fire.requested_by) == (
            "manual",
            FireStatus.PENDING,
            "token:ops",
        )

        # Roles: reads need a token (auth on), writes a writer, create/remove an admin.
        assert http.get("/api/schedules").status_code == 401
        assert http.post("/api/schedules/s0/pause", headers=read).status_code == 403
        assert http.post("/api/schedules/s0/run-now").status_code == 401
        body = {"name": "x", "pipeline": "score", "cron": "* * * * *"}
        assert http.post("/api/schedules", json=body, headers=write).status_code == 403
        assert http.delete("/api/schedules/s2", headers=write).status_code == 403
        assert not client.metadata.schedules.get("s0").paused
        for method, url in (
            ("GET", "/api/schedules/nope"),
            ("GET", "/api/schedules/nope/fires"),
            ("POST", "/api/schedules/nope/pause"),
            ("POST", "/api/schedules/nope/run-now"),
            ("DELETE", "/api/schedules/nope"),
        ):
            missing = http.request(method, url, headers=admin)
            assert missing.status_code == 404, (method, url)
            assert "No schedule named 'nope'" in missing.text

        again = http.post("/api/schedules", json={**body, "name": "s2"}, headers=admin)
        assert again.status_code == 409 and "--replace" in again.text
        bad = http.post("/api/schedules", json={**body, "pipeline": "nope"}, headers=admin)
        assert bad.status_code == 404 and "nope" in bad.text
        gone = http.delete("/api/schedules/s2", headers=admin)
        assert gone.json() == {"name": "s2", "removed": True}
        assert client.metadata.schedules.find("s2") is None


def test_loopml_toml_schedules_are_refused_with_409(project: Path) -> None:
    (project / "pipelines.py").write_text(PIPELINES)
    (project / "loopml.toml").write_text(TOML)
    lib.sync_config(Client().open())
    with api(auth=True) as (server, client), httpx.Client(base_url=server.url) as http:
        admin = token(client, "root", "admin")
        body = {"name": "from-file", "pipeline": "score", "cron": "* * * * *", "replace": True}
        for answer in (
            http.post("/api/schedules", json=body, headers=admin),
            http.delete("/api/schedules/from-file", headers=admin),
        ):
            assert answer.status_code == 409, answer.text
            assert "loopml.toml" in answer.text and "[schedules.from-file]" in answer.text
        assert client.metadata.schedules.get("from-file").cron == "0 6 * * MON"
        listed = http.get("/api/schedules", headers=admin).json()["items"]
        assert [(s["name"], s["source"]) for s in listed] == [("from-file", "config")]
