"""Tracking over REST, as a remote client uses it: create a run, log batches (with and
without idempotency keys), heartbeat, end; and every way a write is refused."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
from _apiwrite_helpers import api, token

from loopml.store import RunStatus


def _points(n: int, key: str = "loss", first: int = 0) -> list[dict[str, object]]:
    return [{"key": key, "value": i / 2, "step": first + i} for i in range(n)]


def test_a_remote_client_creates_logs_heartbeats_and_ends_a_run(project: Path) -> None:
    with api() as (server, client), httpx.Client(base_url=server.url, timeout=60) as http:
        writer = token(client, "trainer", "writer")
        made = http.post(
            "/api/runs",
            json={
                "pipeline": "remote-train",
                "params": {"alpha": 0.5, "layers": 3},
                "tags": {"team": "fraud"},
                "lease_s": 120,
                "host": "gpu-7",
            },
            headers=writer,
        )
        assert made.status_code == 201, made.text
        run = made.json()
        assert run["label"] == "remote-train#1" and run["url"] == f"/api/runs/{run['id']}"
        lease = run["lease"]

        batch = {
            "lease": lease,
            "metrics": [*_points(50), {"key": "acc", "value": None, "step": 0}],
            "params": {"epochs": 10},
            "tags": {"stage": "fit"},
        }
        logged = http.post(f"/api/runs/{run['id']}/log", json=batch, headers=writer)
        assert logged.status_code == 200, logged.text
        assert logged.json() == {"run": run["id"], "metrics": 51, "params": 1, "tags": 1}
        assert http.post(
            f"/api/runs/{run['id']}/heartbeat", json={"lease": lease}, headers=writer
        ).json() == {"run": run["id"], "status": RunStatus.RUNNING}
        ended = http.post(f"/api/runs/{run['id']}/end", json={"lease": lease}, headers=writer)
        assert ended.json()["status"] == RunStatus.SUCCEEDED
        again = http.post(f"/api/runs/{run['id']}/end", json={"lease": lease}, headers=writer)
        assert again.status_code == 200  # a retried end is answered the same

        record = client.run_record(run["id"])
        assert record.status == RunStatus.SUCCEEDED and record.host == "gpu-7"
        assert record.params == {"alpha": "0.5", "layers": "3", "epochs": "10"}
        assert record.tags == {"team": "fraud", "stage": "fit", "created_by": "token:trainer"}
        history = client.metric_history(run["id"], "loss")
        assert [(p.step, p.value) for p in history] == [(i, i / 2) for i in range(50)]
        assert math.isnan(client.metric_history(run["id"], "acc")[0].value)

        late = http.post(f"/api/runs/{run['id']}/log", json=batch, headers=writer)
        assert late.status_code == 409 and "succeeded" in late.json()["detail"][0]["msg"]
        beat = http.post(f"/api/runs/{run['id']}/heartbeat", json={"lease": lease}, headers=writer)
        assert beat.status_code == 409
        other = http.post(
            f"/api/runs/{run['id']}/end",
            json={"lease": lease, "status": RunStatus.FAILED},
            headers=writer,
        )
        assert other.status_code == 409


def test_an_idempotency_key_stores_a_batch_once_and_answers_its_retries(project: Path) -> None:
    with api() as (server, client), httpx.Client(base_url=server.url, timeout=60) as http:
        writer = token(client, "trainer", "writer")
        run = http.post("/api/runs", json={"lease_s": 120}, headers=writer).json()
        url = f"/api/runs/{run['id']}/log"
        batch = {"lease": run["lease"], "metrics": _points(100)}
        keyed = {**writer, "Idempotency-Key": "batch-0001"}
        first = http.post(url, json=batch, headers=keyed)
        assert first.status_code == 200 and "idempotent-replayed" not in first.headers
        # The client did not hear the answer, changed its mind about the value: it must not
        # matter, the retry of the same request is answered from the first.
        retry = http.post(url, json=batch, headers=keyed)
        assert retry.status_code == 200 and retry.json() == first.json()
        assert retry.headers["idempotent-replayed"] == "true"
        assert client.metadata.metrics.count(run["id"]) == 100

        changed = {**batch, "metrics": _points(100, first=100)}
        reused = http.post(url, json=changed, headers=keyed)
        assert reused.status_code == 409 and "another body" in reused.json()["detail"][0]["msg"]
        assert client.metadata.metrics.count(run["id"]) == 100
        bad_key = http.post(url, json=changed, headers={**writer, "Idempotency-Key": "k" * 201})
        assert bad_key.status_code in (400, 422)


def test_bad_points_wrong_leases_and_missing_tokens_are_refused_and_named(project: Path) -> None:
    with api() as (server, client), httpx.Client(base_url=server.url, timeout=60) as http:
        writer = token(client, "trainer", "writer")
        run = http.post("/api/runs", json={}, headers=writer).json()
        url = f"/api/runs/{run['id']}/log"
        lease = run["lease"]
        cases = [
            ([{"key": "ok", "value": 1}, {"key": "", "value": 1}], ["body", "metrics", 1]),
            ([{"key": "big", "value": 1, "step": 2**64}], ["body", "metrics", 0]),
        ]
        for metrics, loc in cases:
            r = http.post(url, json={"lease": lease, "metrics": metrics}, headers=writer)
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"] == loc and r.json()["detail"][0]["msg"]
        text = http.post(url, json={"lease": lease, "metrics": [{"key": "a", "value": "x"}]})
        assert text.status_code == 401
        typed = http.post(
            url, json={"lease": lease, "metrics": [{"key": "a", "value": "x"}]}, headers=writer
        )
        assert typed.status_code == 422 and typed.json()["detail"][0]["loc"][:3] == [
            "body",
            "metrics",
            0,
        ]
        assert client.metadata.metrics.count(run["id"]) == 0  # no half batch

        stolen = http.post(url, json={"lease": "0" * 32, "metrics": _points(1)}, headers=writer)
        assert stolen.status_code == 409 and "lease" in stolen.json()["detail"][0]["msg"]
        missing = http.post(
            "/api/runs/ffffffffffffffffffffffffffffffff/log",
            json={"lease": lease, "metrics": _points(1)},
            headers=writer,
        )
        assert missing.status_code == 404
        running = http.post(
            f"/api/runs/{run['id']}/end", json={"lease": lease, "status": "running"}, headers=writer
        )
        assert running.status_code == 422
        reader = token(client, "dash", "reader")
        assert http.post("/api/runs", json={}, headers=reader).status_code == 403
        assert http.post("/api/runs", json={}).status_code == 401
