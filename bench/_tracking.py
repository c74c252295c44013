"""Tracking figures: metric logging throughput, and runs queries over 1,000 and 100,000 runs.

Metric logging goes through the public API (``start_run`` + ``run.log_metric`` /
``run.log_metrics``) and is timed until the ``with`` block has ended, i.e. until every
point is committed; the rows are then counted so a lost point cannot pass unnoticed.

The runs for the query figures are inserted in bulk through ``loopml.store.schema`` and
SQLAlchemy executemany (the tracking API would take minutes to create 100,000 runs);
only the queries are timed, through ``Client.search_runs``.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from _timing import Options, fmt_ms, judged, median, percentile, report, temp_project

METRIC_BUDGET = 200_000  # points/s
QUERY_FILTER = "metrics.rmse < 3 and params.alpha >= 0.1"
QUERY_SORT = "-metrics.rmse"
QUERY_LIMIT = 20
QUERY_BUDGET_1K_S = 0.005
QUERY_BUDGET_100K_S = 0.100
METRIC_KEYS = ("loss", "accuracy", "learning_rate", "grad_norm")


# --- metric logging -----------------------------------------------------------------------


def _log_points(client: Any, n: int) -> tuple[float, str]:
    keys = METRIC_KEYS
    started = time.perf_counter()
    with client.start_run("log-metric") as run:
        log = run.log_metric
        for i in range(n):
            log(keys[i & 3], i * 1e-3, step=i >> 2)
    return time.perf_counter() - started, run.id


def _log_batches(client: Any, n: int, width: int = 10) -> tuple[float, str]:
    names = [f"m{j}" for j in range(width)]
    batches = [{name: (i + j) * 1e-3 for j, name in enumerate(names)} for i in range(n // width)]
    started = time.perf_counter()
    with client.start_run("log-metrics") as run:
        log = run.log_metrics
        for i, batch in enumerate(batches):
            log(batch, step=i)
    return time.perf_counter() - started, run.id


def bench_metric_logging(opts: Options) -> None:
    n = opts.pick(100_000, 10_000)
    repeats = opts.pick(3, 1)
    with temp_project("metrics"):
        from loopml.tracking.client import default_client

        client = default_client().open()
        with client.start_run("warm-up") as run:
            run.log_metric("x", 1.0)
        for label, fn, shape in (
            ("run.log_metric", _log_points, f"{n:,} points, 4 keys"),
            ("run.log_metrics", _log_batches, f"{n // 10:,} batches of 10 keys"),
        ):
            rates, lost = [], 0
            for _ in range(repeats):
                elapsed, run_id = fn(client, n)
                rates.append(n / elapsed)
                lost += n - client.metadata.metrics.count(run_id)
            rate = median(rates)
            kept = "none lost" if lost == 0 else f"{lost:,} POINTS LOST"
            report(
                opts,
                f"metric logging ({label})",
                f"{rate:,.0f} points/s (min {min(rates):,.0f}; {shape}, committed, {kept}; median of {repeats})",
                f"≥ {METRIC_BUDGET:,} points/s, none lost",
                judged(opts, rate >= METRIC_BUDGET and lost == 0, size_dependent=False),
            )


# --- runs query ---------------------------------------------------------------------------


def _fill(store: Any, n: int, seed: int = 7) -> list[tuple[float, float, str]]:
    """Insert ``n`` finished runs with params alpha/l1_ratio/model and metrics rmse/mae/r2.

    Returns (rmse, started_at, id) of the runs the benchmark filter matches, so the query
    result can be checked.
    """
    rng = random.Random(seed)
    base = time.time() - n
    runs, params, latest, matches = [], [], [], []
    for i in range(n):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        started = base + i
        runs.append(
            {
                "id": run_id,
                "pipeline": "train",
                "number": i + 1,
                "name": f"train#{i + 1}",
                "kind": "pipeline",
                "status": "succeeded" if i % 10 else "failed",
                "started_at": started,
                "ended_at": started + 0.5,
                "duration_s": 0.5,
                "heartbeat_at": started + 0.5,
                "lease_s": 25.0,
                "lease_token": "0" * 32,
                "host": "bench",
                "pid": 1,
                "executor": "local",
                "python_version": "3.11",
                "cpu_s": 0.4,
                "cost": 0.0,
            }
        )
        alpha, l1_ratio = rng.random(), rng.random()
        model = rng.choice(("ridge", "lasso", "elasticnet"))
        params += [
            {"run_id": run_id, "key": "alpha", "value": repr(alpha), "num": alpha},
            {"run_id": run_id, "key": "l1_ratio", "value": repr(l1_ratio), "num": l1_ratio},
            {"run_id": run_id, "key": "model", "value": model, "num": None},
        ]
        rmse = rng.uniform(0, 10)
        latest += [
            {"run_id": run_id, "key": "rmse", "step": 0, "value": rmse},
            {"run_id": run_id, "key": "mae", "step": 0, "value": rmse * 0.8},
            {"run_id": run_id, "key": "r2", "step": 0, "value": 1 - rmse / 10},
        ]
        if rmse < 3 and alpha >= 0.1:
            matches.append((rmse, started, run_id))

    def insert(tx: Any) -> None:
        for table, rows in (("runs", runs), ("params", params), ("latest_metrics", latest)):
            columns = list(rows[0])
            tx.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({tx.marks(len(columns))})",
                [tuple(r[c] for c in columns) for r in rows],
            )

    store.db.write(insert)
    return matches


def _query_figure(
    opts: Options, n: int, repeats: int, budget_s: float, size_dependent: bool
) -> None:
    with temp_project(f"query{n}"):
        from loopml.tracking.client import default_client

        client = default_client().open()
        started = time.perf_counter()
        matches = _fill(client.metadata, n)
        fill_s = time.perf_counter() - started
        expected = [m[2] for m in sorted(matches, key=lambda m: (-m[0], -m[1]))[:QUERY_LIMIT]]

        def query() -> list[Any]:
            return client.search_runs(QUERY_FILTER, QUERY_SORT, limit=QUERY_LIMIT)

        for _ in range(3):
            found = query()
        correct = [r.id for r in found] == expected
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            query()
            times.append(time.perf_counter() - t0)
        p50, p95 = median(times), percentile(times, 95)
        check = (
            f"{len(matches):,} match, top {QUERY_LIMIT} correct"
            if correct
            else "WRONG RESULT (top 20 differs from a Python reference)"
        )
        report(
            opts,
            f"runs query over {n:,} runs",
            f"p50 {fmt_ms(p50)}, p95 {fmt_ms(p95)}, min {fmt_ms(min(times))} over {repeats} queries "
            f"(`{QUERY_FILTER}` sorted by {QUERY_SORT}, limit {QUERY_LIMIT}; {check}; SQLite; "
            f"bulk insert took {fill_s:.1f} s)",
            f"p50 < {budget_s * 1000:g} ms",
            judged(opts, p50 < budget_s and correct, size_dependent=size_dependent),
        )


def bench_runs_query(opts: Options) -> None:
    _query_figure(opts, 1_000, opts.pick(200, 30), QUERY_BUDGET_1K_S, size_dependent=False)
    _query_figure(
        opts, opts.pick(100_000, 10_000), opts.pick(30, 5), QUERY_BUDGET_100K_S, size_dependent=True
    )
