"""R19 and R30 for the read routes: bounded work and answers on a big store.

10,000 runs (20 params, 10 metrics each) and one run with a 200,000-point series are
written straight through the store's transaction (as ``bench/`` does: creating them one
by one would be the test's whole budget). Filter + sort p95 over HTTP and the largest
answer are printed (figures, not asserted); every list route refuses a page over
``MAX_LIMIT``; SQL in ``filter``/``sort`` is a parse error that changes no table.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_read_world import detail, serving

from loopml.server.api.limits import MAX_RESPONSE_BYTES
from loopml.server.pages import MAX_LIMIT
from loopml.store.status import RunStatus

RUNS = 10_000
POINTS = 200_000
RUN_COLUMNS = (
    "id, pipeline, number, name, kind, status, started_at, ended_at, duration_s, heartbeat_at, "
    "lease_s, lease_token, host, pid, executor, python_version, cpu_s, cost"
)
TABLES = ("runs", "params", "latest_metrics", "metrics", "tags", "artifacts")


def _insert(tx: Any, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    tx.executemany(
        f"INSERT INTO {table} ({columns}) VALUES ({tx.marks(len(columns.split(',')))})", rows
    )


def _fill(client: Any) -> str:
    rng = random.Random(5)
    base = time.time() - RUNS
    runs, params, latest = [], [], []
    for i in range(RUNS):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        status = RunStatus.FAILED if i % 10 == 0 else RunStatus.SUCCEEDED
        started = base + i
        runs.append(
            (
                run_id,
                "train",
                i + 1,
                f"train#{i + 1}",
                "pipeline",
                str(status),
                started,
                started + 0.5,
                0.5,
                started + 0.5,
                25.0,
                "0" * 32,
                "ci",
                1,
                "local",
                "3.11",
                0.4,
                0.0,
            )
        )
        params += [(run_id, f"p{k}", str(rng.random()), rng.random()) for k in range(20)]
        latest += [(run_id, f"m{k}", 0, rng.uniform(0, 10)) for k in range(10)]
    long_id = runs[-1][0]
    points = [(long_id, "loss", s, 1.0 / (s + 1), base) for s in range(POINTS)]

    def write(tx: Any) -> None:
        _insert(tx, "runs", RUN_COLUMNS, runs)
        _insert(tx, "params", "run_id, key, value, num", params)
        _insert(tx, "latest_metrics", "run_id, key, step, value", latest)
        _insert(tx, "metrics", "run_id, key, step, value, timestamp", points)
        _insert(
            tx,
            "latest_metrics",
            "run_id, key, step, value",
            [(long_id, "loss", POINTS - 1, 1.0 / POINTS)],
        )

    client.metadata.db.write(write)
    return str(long_id)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, httpx.Client]]:
    from loopml.tracking.client import Client

    root = tmp_path_factory.mktemp("big")
    client = Client(store_uri=f"sqlite:///{root / 'store.db'}", artifacts_uri=str(root / "blobs"))
    client.open()
    long_id = _fill(client)
    with serving(client) as http:
        yield client, long_id, http
    client.close()


def _counts(client: Any) -> dict[str, int]:
    return {
        t: int(client.metadata.db.read(lambda tx, t=t: tx.scalar(f"SELECT COUNT(*) FROM {t}")))
        for t in TABLES
    }


INJECTIONS = [
    "1=1; DROP TABLE runs",
    "name = 'x'; DELETE FROM runs; --",
    "name = 'x' OR 1=1",
    "name = '' OR ''=''",
    "metrics.m1 < 3) OR (1=1",
    "params.p1 = 'a' UNION SELECT id FROM runs --",
    "status = 'succeeded' /* comment */",
    "metrics.m1 < (SELECT 1)",
    "params.\"p1\" = 1; UPDATE runs SET name='pwned'",
    "name = char(65)",
    "metrics.m1 < 1e999999; VACUUM",
    "'; ATTACH DATABASE '/tmp/x.db' AS x; --",
    "tags.a = 1 AND sqlite_version() > 0",
    "pg_sleep(5)",
]
SORT_INJECTIONS = [
    "started; DROP TABLE runs",
    "(SELECT 1)",
    "metrics.m1 desc, 1=1",
    "name asc --",
    "random()",
]


def test_sql_in_filter_and_sort_is_a_parse_error_that_changes_nothing(big: Any) -> None:
    client, _, http = big
    before = _counts(client)
    for text in INJECTIONS:
        got = http.get("/api/runs", params={"filter": text})
        assert 400 <= got.status_code < 500, (text, got.text)
        detail(got)
    for text in SORT_INJECTIONS:
        got = http.get("/api/runs", params={"sort": text})
        assert 400 <= got.status_code < 500, (text, got.text)
        detail(got)
    # Quoted, the same text is only a value: no run has that name.
    quoted = http.get("/api/runs", params={"filter": "name = 'x\\' OR 1=1 --'"})
    assert quoted.status_code == 200 and quoted.json()["items"] == []
    assert _counts(client) == before


def test_every_list_route_refuses_a_page_over_max_limit(big: Any) -> None:
    client, long_id, http = big
    doc = http.get("/api/openapi.json").json()
    values = {
        "run": long_id,
        "key": "loss",
        "digest": "ab" * 32,
        "name": "x",
        "version": "1",
        "id": "1",
    }
    listed = []
    for path, ops in doc["paths"].items():
        op = ops.get("get")
        query = {p["name"]: p for p in (op or {}).get("parameters", []) if p["in"] == "query"}
        if "limit" not in query:
            continue
        url = path.format(**values)
        listed.append(path)
        # MAX_LIMIT, unless the route declares its own (the prediction log's 10,000 rows).
        schema = query["limit"]["schema"]
        top = max(s.get("maximum", 0) for s in schema.get("anyOf", [schema]))
        assert top == MAX_LIMIT or (path == "/api/predictions" and top == 10_000), (path, top)
        for limit in (top + 1, 10**7):
            got = http.get(url, params={"limit": limit})
            assert got.status_code == 422 and "limit" in detail(got), (url, got.text)
        required = [n for n, p in query.items() if p.get("required")]
        if "{" not in path and not required:
            ok = http.get(url, params={"limit": MAX_LIMIT})
            assert ok.status_code == 200 and len(ok.json()["items"]) <= MAX_LIMIT
    assert len(listed) >= 14, listed


def test_filter_sort_p95_and_long_series_and_the_largest_answer(big: Any) -> None:
    client, long_id, http = big
    largest = 0
    timings = []
    queries = [
        ("metrics.m1 < 3 and params.p2 >= 0.5", "metrics.m3 desc"),
        ("status = 'failed'", "started"),
    ]
    for i in range(40):
        flt, srt = queries[i % 2]
        started = time.perf_counter()
        got = http.get("/api/runs", params={"filter": flt, "sort": srt, "limit": 100})
        timings.append(time.perf_counter() - started)
        assert got.status_code == 200
        largest = max(largest, len(got.content))
    expected = client.search_runs(queries[1][0], queries[1][1], limit=100)
    assert [r["id"] for r in got.json()["items"]] == [r.id for r in expected]
    page = http.get("/api/runs", params={"limit": MAX_LIMIT, "sort": "metrics.m1"})
    assert page.status_code == 200 and len(page.json()["items"]) == MAX_LIMIT
    largest = max(largest, len(page.content))

    default = http.get(f"/api/runs/{long_id}/metrics/loss")
    body = default.json()
    assert body["downsampled"] and body["total_points"] == POINTS and len(body["points"]) <= 1000
    most = http.get(f"/api/runs/{long_id}/metrics/loss", params={"max_points": 5000})
    assert len(most.json()["points"]) <= 5000
    largest = max(largest, len(default.content), len(most.content))

    steps: list[int] = []
    start: int | None = 0
    started = time.perf_counter()
    while start is not None:
        got = http.get(
            f"/api/runs/{long_id}/metrics/loss", params={"step_from": start, "limit": MAX_LIMIT}
        )
        part = got.json()
        steps += [p["step"] for p in part["points"]]
        start = part["next_step_from"]
        largest = max(largest, len(got.content))
    paging_s = time.perf_counter() - started
    assert steps == list(range(POINTS))
    p50 = statistics.median(timings)
    p95 = statistics.quantiles(timings, n=20)[18]
    print(
        f"\nR30 (CI size): {RUNS:,} runs x 20 params x 10 metrics; filter+sort over HTTP "
        f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms; {POINTS:,}-point series paged "
        f"in {paging_s:.1f} s ({POINTS // MAX_LIMIT} pages); largest answer {largest:,} bytes "
        f"(cap {MAX_RESPONSE_BYTES:,})"
    )
    assert largest < MAX_RESPONSE_BYTES
