"""R08: the server killed (SIGKILL) under write load loses no acknowledged batch, doubles none.

Client threads send metric batches, each with its own ``Idempotency-Key``, and retry a
batch (same key, same body) until it is acknowledged. Meanwhile the test kills the real
``loopml server`` process at random moments and starts it again on the same port. Then:
every batch was acknowledged, every batch is stored whole (no half batch), every key is
stored once, and the points stored are exactly the points sent.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from _apiwrite_helpers import CliServer, token

from loopml.tracking.client import Client

POINTS = 20  # per batch


def _client(
    url: str, auth: dict[str, str], run: dict[str, str], c: int, batches: int, tally: Counter[str]
) -> None:
    with httpx.Client(base_url=url, timeout=5, headers=auth) as http:
        for b in range(batches):
            key = f"r08-{c}-{b}-{uuid.uuid4().hex[:8]}"
            body = {
                "lease": run["lease"],
                "metrics": [
                    {"key": f"c{c}", "value": b + j / 32, "step": b * POINTS + j}
                    for j in range(POINTS)
                ],
            }
            attempt = 0
            while True:
                attempt += 1
                try:
                    r = http.post(
                        f"/api/runs/{run['id']}/log", json=body, headers={"Idempotency-Key": key}
                    )
                except httpx.TransportError:
                    tally["transport errors"] += 1
                    threading.Event().wait(0.02)  # the server is down: try again shortly
                    continue
                assert r.status_code < 500 or attempt < 1000, r.text
                if r.status_code == 200:
                    tally["acknowledged"] += 1
                    tally["replayed"] += r.headers.get("idempotent-replayed") == "true"
                    break
                assert r.status_code >= 500, r.text  # a 4xx would be a bug: the body is fine
                tally["5xx while restarting"] += 1
            tally["retried"] += attempt > 1


@pytest.mark.parametrize(
    ("kills", "clients", "batches"),
    [
        pytest.param(5, 8, 150, id="ci"),
        pytest.param(20, 16, 2_000, id="soak", marks=pytest.mark.soak),
    ],
)
def test_r08_a_killed_server_loses_no_acknowledged_batch(
    project: Path, kills: int, clients: int, batches: int
) -> None:
    client = Client().open()
    auth = token(client, "r08", "writer")
    server = CliServer("--port", "0", "--no-scheduler", cwd=project).started()
    port = server.url.rsplit(":", 1)[1]
    with httpx.Client(base_url=server.url, timeout=30, headers=auth) as http:
        run = http.post("/api/runs", json={"pipeline": "r08", "lease_s": 600}).json()
    tally: Counter[str] = Counter()
    threads = [
        threading.Thread(target=_client, args=(server.url, auth, run, c, batches, tally))
        for c in range(clients)
    ]
    for t in threads:
        t.start()
    rng = random.Random(8)
    try:
        for _ in range(kills):
            threading.Event().wait(rng.uniform(0.2, 0.8))  # writes are in flight by now
            server.kill()
            tally["kills"] += 1
            server = CliServer("--port", port, "--no-scheduler", cwd=project).started()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
    finally:
        server.stop()

    total = clients * batches
    assert tally["acknowledged"] == total
    rows = client.metadata.db.read(
        lambda tx: tx.all("SELECT key, step, value FROM metrics WHERE run_id = ?", (run["id"],))
    )
    stored = Counter((k, int(s), float(v)) for k, s, v in rows)
    sent = Counter(
        (f"c{c}", b * POINTS + j, b + j / 32)
        for c in range(clients)
        for b in range(batches)
        for j in range(POINTS)
    )
    assert stored == sent  # nothing lost, nothing doubled, no half batch
    per_batch = Counter((k, s // POINTS) for k, s, _ in stored)
    assert set(per_batch.values()) == {POINTS}
    keys = client.metadata.db.read(
        lambda tx: tx.all("SELECT idem_key, COUNT(*) FROM idempotency_keys GROUP BY idem_key")
    )
    assert len(keys) == total and {n for _, n in keys} == {1}
    client.close()
    print(
        f"\nR08 {kills} kills, {clients} clients x {batches} batches of {POINTS}: "
        f"{tally['acknowledged']} acknowledged, {tally['retried']} retried "
        f"({tally['replayed']} answered from their stored key), "
        f"{tally['transport errors']} transport errors, stored {len(rows):,} points = sent"
    )
