"""R02: concurrent logging through the server on PostgreSQL, nothing lost, no 5xx.

A real ``loopml server --workers 4`` on a real PostgreSQL; client processes send their
points over REST in batches, four clients per run, each batch shuffled so the server's
transactions lock the same ``latest_metrics`` rows in different orders (deadlocks, which
the server must retry, never answer as a 5xx). The stored multiset of points must equal
the one sent, by count and by checksum.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from _apiwrite_helpers import CliServer, token

from loopml.tracking.client import Client

CLIENT = Path(__file__).with_name("_r02_client.py")


@pytest.mark.parametrize(
    ("clients", "points", "batch"),
    [
        pytest.param(16, 5_000, 500, id="ci"),
        pytest.param(64, 50_000, 1_000, id="soak", marks=pytest.mark.soak),
    ],
)
def test_r02_concurrent_rest_logging_on_postgres_loses_nothing(
    project: Path,
    postgres: object,
    monkeypatch: pytest.MonkeyPatch,
    clients: int,
    points: int,
    batch: int,
) -> None:
    url = postgres.create_database(f"r02_{uuid.uuid4().hex[:10]}")  # type: ignore[attr-defined]
    monkeypatch.setenv("LOOPML_STORE_URI", url)
    client = Client().open()
    writer = token(client, "r02", "writer")
    server = CliServer("--workers", "4", "--port", "0", "--no-scheduler", cwd=project).started()
    try:
        import httpx

        with httpx.Client(base_url=server.url, timeout=60, headers=writer) as http:
            runs = [
                http.post("/api/runs", json={"pipeline": "r02", "lease_s": 600}).json()
                for _ in range(max(1, clients // 4))
            ]
        began = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(CLIENT),
                    server.url,
                    writer["Authorization"].split()[1],
                    runs[c % len(runs)]["id"],
                    runs[c % len(runs)]["lease"],
                    str(c),
                    str(points),
                    str(batch),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for c in range(clients)
        ]
        reports = []
        for p in procs:
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, err
            reports.append(json.loads(out))
        wall = time.perf_counter() - began
    finally:
        server.stop()

    statuses: Counter[int] = Counter()
    latencies = []
    for r in reports:
        statuses.update({int(k): v for k, v in r["statuses"].items()})
        latencies += r["latencies"]
    assert set(statuses) == {200}, f"answers other than 200: {statuses}"

    expected = Counter(
        (runs[c % len(runs)]["id"], f"k{i % 3}", c * 10**7 + i, c + i / 8)
        for c in range(clients)
        for i in range(points)
    )
    rows = client.metadata.db.read(
        lambda tx: tx.all("SELECT run_id, key, step, value FROM metrics")
    )
    stored = Counter((r, k, int(s), float(v)) for r, k, s, v in rows)
    client.close()
    assert sum(stored.values()) == sum(expected.values()) == clients * points
    assert sum(v for _, _, _, v in stored.elements()) == sum(
        v for _, _, _, v in expected.elements()
    )
    assert stored == expected

    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"\nR02 {clients} clients x {points:,} points, batches of {batch}, 4 workers, "
        f"PostgreSQL: {clients * points / wall:,.0f} points/s over {wall:.1f} s; "
        f"{len(latencies)} requests, p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms; answers {dict(statuses)}"
    )
