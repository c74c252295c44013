"""Tracking figures: metric logging, creating runs, runs queries, and searches returning many runs.

Metric logging goes through the public API (``start_run`` + ``run.log_metric`` /
``run.log_metrics``) and is timed until the ``with`` block has ended, i.e. until every
point is committed; the rows are then counted so a lost point cannot pass unnoticed.

The runs for the query figures are inserted in bulk through the store's own transaction
and DB-API executemany (the tracking API would take minutes to create 100,000 runs);
only the queries are timed, through ``Client.search_runs`` (and ``loopml.runs()``).

Creating runs goes through the public API (``client.start_run`` and ``loopml.start_run``),
each run given 10 params and 5 metrics and ended; MLflow's equivalent is measured in the
same process when it happens to be installed (it is never a dependency).
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from _timing import Options, fmt_ms, judged, median, percentile, repeat, report, temp_project

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


RUN_COLUMNS = (
    "id, pipeline, number, name, kind, status, started_at, ended_at, duration_s, heartbeat_at, "
    "lease_s, lease_token, host, pid, executor, python_version, cpu_s, cost"
)


def run_row(run_id: str, number: int, started: float, *, failed: bool = False) -> tuple[Any, ...]:
    """One finished run of pipeline ``train`` as a row of ``RUN_COLUMNS``."""
    status = "failed" if failed else "succeeded"
    return (
        run_id,
        "train",
        number,
        f"train#{number}",
        "pipeline",
        status,
        started,
        started + 0.5,
        0.5,
        started + 0.5,
        25.0,
        "0" * 32,
        "bench",
        1,
        "local",
        "3.11",
        0.4,
        0.0,
    )


def insert_rows(tx: Any, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert through the store's own transaction (executemany, one statement)."""
    if rows:
        marks = tx.marks(len(columns.split(",")))
        tx.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def _fill(
    store: Any, n: int, seed: int = 7, *, params: int = 3, metrics: int = 3
) -> list[tuple[float, float, str, float]]:
    """Insert ``n`` finished runs with params alpha/l1_ratio/model and metrics rmse/mae/r2.

    ``params`` and ``metrics`` above 3 add numeric params ``p3``… and metrics ``m3``….
    Returns (rmse, started_at, id, alpha) of every run, so a query result can be checked
    against a Python reference.
    """
    rng = random.Random(seed)
    base = time.time() - n
    runs, param_rows, latest, facts = [], [], [], []
    for i in range(n):
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        started = base + i
        runs.append(run_row(run_id, i + 1, started, failed=i % 10 == 0))
        alpha, l1_ratio = rng.random(), rng.random()
        model = rng.choice(("ridge", "lasso", "elasticnet"))
        param_rows += [
            (run_id, "alpha", repr(alpha), alpha),
            (run_id, "l1_ratio", repr(l1_ratio), l1_ratio),
            (run_id, "model", model, None),
        ]
        param_rows += [(run_id, f"p{k}", str(i % (k + 2)), i % (k + 2)) for k in range(3, params)]
        rmse = rng.uniform(0, 10)
        latest += [
            (run_id, "rmse", 0, rmse),
            (run_id, "mae", 0, rmse * 0.8),
            (run_id, "r2", 0, 1 - rmse / 10),
        ]
        latest += [(run_id, f"m{k}", 0, rmse * k) for k in range(3, metrics)]
        facts.append((rmse, started, run_id, alpha))

    def insert(tx: Any) -> None:
        insert_rows(tx, "runs", RUN_COLUMNS, runs)
        insert_rows(tx, "params", "run_id, key, value, num", param_rows)
        insert_rows(tx, "latest_metrics", "run_id, key, step, value", latest)

    store.db.write(insert)
    return facts


def _query_figure(
    opts: Options, n: int, repeats: int, budget_s: float, size_dependent: bool
) -> None:
    with temp_project(f"query{n}"):
        from loopml.tracking.client import default_client

        client = default_client().open()
        started = time.perf_counter()
        matches = [f for f in _fill(client.metadata, n) if f[0] < 3 and f[3] >= 0.1]
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


# --- creating runs ------------------------------------------------------------------------

CREATE_BUDGET = 2_000  # runs/s
CREATE_PARAMS = {
    "alpha": 0.5,
    "l1_ratio": 0.15,
    "model": "elasticnet",
    "max_iter": 1000,
    "tol": 1e-4,
    "fit_intercept": True,
    "selection": "cyclic",
    "seed": 42,
    "features": "f0,f1,f2,f3,f4",
    "cv": 5,
}
CREATE_METRICS = {"rmse": 2.5, "mae": 1.9, "r2": 0.81, "fit_s": 0.12, "n_iter": 37.0}


def _create_runs(start_run: Any, name: str, n: int) -> tuple[float, list[float]]:
    """Seconds for ``n`` runs, each started, given 10 params + 5 metrics, and ended."""
    each = []
    clock = time.perf_counter
    started = clock()
    for _ in range(n):
        t0 = clock()
        with start_run(name) as run:
            run.log_params(CREATE_PARAMS)
            run.log_metrics(CREATE_METRICS)
        each.append(clock() - t0)
    return clock() - started, each


def _stored_correctly(client: Any, name: str, expected_runs: int) -> bool:
    """Every run named ``name`` ended succeeded with all 10 params and 5 metrics stored."""

    def read(tx: Any) -> tuple[int, int, int]:
        where = "FROM runs WHERE pipeline = ? AND status = 'succeeded'"
        ids = f"SELECT id {where}"
        return (
            int(tx.scalar(f"SELECT COUNT(*) {where}", (name,))),
            int(tx.scalar(f"SELECT COUNT(*) FROM params WHERE run_id IN ({ids})", (name,))),
            int(tx.scalar(f"SELECT COUNT(*) FROM latest_metrics WHERE run_id IN ({ids})", (name,))),
        )

    runs, params, metrics = client.metadata.db.read(read)
    return (runs, params, metrics) == (
        expected_runs,
        expected_runs * len(CREATE_PARAMS),
        expected_runs * len(CREATE_METRICS),
    )


def _mlflow_create(root: Any, n: int) -> str:
    """MLflow's equivalent in this process (SQLite backend), or why it was not measured."""
    import contextlib
    import importlib.util
    import os
    import sys

    if importlib.util.find_spec("mlflow") is None:
        return "(MLflow not installed)"
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    with contextlib.redirect_stdout(sys.stderr):  # its migrations' chatter is not a figure
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
        mlflow.set_experiment("create-bench")
        for _ in range(3):  # warm-up: the schema is created on first use
            with mlflow.start_run():
                mlflow.log_params(CREATE_PARAMS)
                mlflow.log_metrics(CREATE_METRICS)
        started = time.perf_counter()
        for _ in range(n):
            with mlflow.start_run():
                mlflow.log_params(CREATE_PARAMS)
                mlflow.log_metrics(CREATE_METRICS)
        elapsed = time.perf_counter() - started
    return (
        f"{n / elapsed:,.0f} runs/s ({fmt_ms(elapsed / n)} each; mlflow {mlflow.__version__}, "
        f"SQLite, {n:,} runs, same process)"
    )


def bench_run_creation(opts: Options) -> None:
    n = opts.pick(2_000, 200)
    warmup = 20
    with temp_project("create") as root:
        import loopml
        from loopml.tracking.client import default_client

        client = default_client().open()
        for label, name, start_run in (
            ("client.start_run", "create-client", client.start_run),
            ("loopml.start_run, default client", "create-default", loopml.start_run),
        ):
            _create_runs(start_run, name, warmup)  # imports, environment capture, SQLite pages
            elapsed, each = _create_runs(start_run, name, n)
            rate = n / elapsed
            stored = _stored_correctly(client, name, warmup + n)
            check = "all stored" if stored else "WRONG RESULT (runs, params or metrics missing)"
            report(
                opts,
                f"create a run ({label}, 10 params + 5 metrics, ended)",
                f"{rate:,.0f} runs/s ({fmt_ms(elapsed / n)} each; per run p50 {fmt_ms(median(each))}, "
                f"p95 {fmt_ms(percentile(each, 95))}; {n:,} runs in one process, {check}; SQLite)",
                f"≥ {CREATE_BUDGET:,} runs/s",
                judged(opts, rate >= CREATE_BUDGET and stored, size_dependent=False),
            )
        report(
            opts,
            "create a run, MLflow (mlflow.start_run + log_params + log_metrics)",
            _mlflow_create(root, opts.pick(200, 20)),
        )


# --- search returning many runs ------------------------------------------------------------

MANY_FILTER = "params.alpha >= 0.3 and metrics.rmse < 7"
MANY_RUNS = 1_000
MANY_BUDGET_S = 0.005


def bench_search_many(opts: Options) -> None:
    """1,000 runs with 10 params + 5 metrics each; ~500 match and come back whole."""
    with temp_project("search"):
        import loopml
        from loopml.tracking.client import default_client

        client = default_client().open()
        facts = _fill(client.metadata, MANY_RUNS, params=10, metrics=5)
        expected = {f[2] for f in facts if f[3] >= 0.3 and f[0] < 7}

        def by_client() -> list[Any]:
            return client.search_runs(MANY_FILTER, limit=MANY_RUNS)

        def by_frame() -> Any:
            return loopml.runs(MANY_FILTER, limit=MANY_RUNS)

        found, frame = by_client(), by_frame()  # warm-up, and the correctness check
        whole = all(len(r.params) == 10 and len(r.metrics) == 5 for r in found)
        correct = {r.id for r in found} == expected and whole and set(frame["id"]) == expected
        check = (
            f"{len(expected)} match, all returned with 10 params + 5 metrics"
            if correct
            else "WRONG RESULT (runs, params or metrics differ from a Python reference)"
        )
        times = {
            "search_runs": repeat(by_client, opts.pick(50, 10), warmup=2),
            "runs": repeat(by_frame, opts.pick(20, 5), warmup=1),
        }
        for label, budget in (
            ("Client.search_runs", True),
            ("loopml.runs(), DataFrame", False),
        ):
            t = times["search_runs" if budget else "runs"]
            p50 = median(t)
            report(
                opts,
                f"search {MANY_RUNS:,} runs returning ~500 with params and metrics ({label})",
                f"p50 {fmt_ms(p50)}, p95 {fmt_ms(percentile(t, 95))}, min {fmt_ms(min(t))} over "
                f"{len(t)} calls (`{MANY_FILTER}`, limit {MANY_RUNS:,}; {check}; SQLite)",
                f"p50 < {MANY_BUDGET_S * 1000:g} ms" if budget else None,
                judged(opts, p50 < MANY_BUDGET_S and correct, size_dependent=False)
                if budget
                else None,
            )
