"""Process targets for the metadata-store races (R01, R03, R04), plus store helpers.

Workers run in processes from a ``forkserver`` that has loopml and the drivers imported
already, so 32 processes start in a second on two cores. Forkserver children inherit the
server's working directory and environment, not the test's: every worker is told its
project folder and store locations explicitly.

Each worker reports one dict on the result queue and never raises: an exception becomes
``{"error": traceback}``, and exceptions in background threads are collected too.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import threading
import time
import traceback
from multiprocessing.context import BaseContext
from typing import Any

PRELOAD = [
    "sqlalchemy",
    "sqlalchemy.dialects.sqlite",
    "psycopg",
    "sqlalchemy.dialects.postgresql",
    "alembic.command",
    "loopml.store",
    "loopml.tracking.client",
    "loopml.tracking.run",
    "loopml.artifacts",
    "_store_workers",
]
WRITER_KEYS = ("single", "b0", "b1", "b2")
FLUSH_EVERY = 250  # iterations (1,000 points): about 10 write transactions per writer


def context() -> BaseContext:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # no effect once the server runs; harmless
    return ctx


def create_store_at(url: str, revision: str) -> None:
    """Bring an empty database to an old schema ``revision`` (and no further)."""
    from loopml.store.engine import Database

    db = Database(url)
    try:
        db.migrate(revision)
    finally:
        db.dispose()


def expected_value(writer: int, key: str, step: int) -> float:
    """What writer ``writer`` logs for ``key`` at ``step`` (exact in binary floating point)."""
    return writer * 1_000_000.0 + step + WRITER_KEYS.index(key) * 0.25


def _prepare(root: str, heartbeat_s: float) -> list[str]:
    os.chdir(root)
    os.environ["LOOPML_HEARTBEAT_SECONDS"] = str(heartbeat_s)
    for var in ("LOOPML_STORE_URI", "LOOPML_ARTIFACTS_URI"):
        os.environ.pop(var, None)
    thread_errors: list[str] = []

    def hook(args: threading.ExceptHookArgs) -> None:
        thread_errors.append(
            "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        )

    threading.excepthook = hook
    return thread_errors


# -- R01 ---------------------------------------------------------------------------------------


def r01_writer(
    root: str, url: str, artifacts: str, index: int, iterations: int, barrier: Any, results: Any
) -> None:
    """Log ``iterations`` × (1 single point + a 3-metric batch) to one run, flushing now and then."""
    thread_errors = _prepare(root, 10.0)
    out: dict[str, Any] = {"role": "writer", "index": index}
    try:
        from loopml.tracking.client import Client

        client = Client(store_uri=url, artifacts_uri=artifacts).open()
        barrier.wait(timeout=120)
        out["t_start"] = time.time()
        started = time.perf_counter()
        log_s: list[float] = []
        flush_s: list[float] = []
        with client.start_run(f"writer{index}") as run:
            out["run_id"] = run.id
            for step in range(iterations):
                t0 = time.perf_counter()
                run.log_metric("single", expected_value(index, "single", step), step=step)
                t1 = time.perf_counter()
                run.log_metrics(
                    {k: expected_value(index, k, step) for k in WRITER_KEYS[1:]}, step=step
                )
                t2 = time.perf_counter()
                log_s += [t1 - t0, t2 - t1]
                if step % FLUSH_EVERY == FLUSH_EVERY - 1:
                    run.flush()
                    flush_s.append(time.perf_counter() - t2)
        out.update(
            elapsed_s=time.perf_counter() - started,
            t_end=time.time(),
            log_s=log_s,
            flush_s=flush_s,
            status=client.get_run(out["run_id"]).status,
            retries=client.metadata.db.retries,
            longest_wait_s=client.metadata.db.longest_wait_s,
        )
        client.close()
    except BaseException:
        out["error"] = traceback.format_exc()
    out["thread_errors"] = thread_errors
    results.put(out)


def r01_reader(
    root: str, url: str, artifacts: str, index: int, barrier: Any, stop: Any, results: Any
) -> None:
    """Poll ``search_runs`` and ``metric_history`` until told to stop; check what is seen."""
    thread_errors = _prepare(root, 10.0)
    out: dict[str, Any] = {
        "role": "reader",
        "index": index,
        "polls": 0,
        "points_seen": 0,
        "problems": [],
    }
    try:
        from loopml.tracking.client import Client

        client = Client(store_uri=url, artifacts_uri=artifacts).open()
        seen: dict[str, int] = {}
        barrier.wait(timeout=120)
        while not stop.is_set():
            for record in client.search_runs("pipeline ~ 'writer*'", limit=100):
                writer = int(record.pipeline.removeprefix("writer"))
                history = client.get_run(record.id).metric_history("single")
                steps = [p.step for p in history]
                if steps != sorted(steps) or len(set(steps)) != len(steps):
                    out["problems"].append(f"{record.label}: unsorted or duplicated steps")
                bad = [p for p in history if p.value != expected_value(writer, "single", p.step)]
                if bad:
                    out["problems"].append(f"{record.label}: wrong values {bad[:3]}")
                if len(history) < seen.get(record.id, 0):
                    out["problems"].append(
                        f"{record.label}: points went from {seen[record.id]} to {len(history)}"
                    )
                seen[record.id] = len(history)
                out["points_seen"] += len(history)
            out["polls"] += 1
        out["retries"] = client.metadata.db.retries
        out["longest_wait_s"] = client.metadata.db.longest_wait_s
        client.close()
    except BaseException:
        out["error"] = traceback.format_exc()
    out["thread_errors"] = thread_errors
    results.put(out)


# -- R03 ---------------------------------------------------------------------------------------


def r03_worker(root: str, url: str, artifacts: str, barrier: Any, results: Any) -> None:
    """Start a run of pipeline "p", store the same bytes, end the run."""
    thread_errors = _prepare(root, 10.0)
    out: dict[str, Any] = {}
    try:
        from loopml.tracking.client import Client

        client = Client(store_uri=url, artifacts_uri=artifacts).open()
        barrier.wait(timeout=120)
        started = time.perf_counter()
        with client.start_run("p") as run:
            record = client.store_value(b"same")
        out.update(
            number=client.get_run(run.id).record.number,
            digest=record.digest,
            status=client.get_run(run.id).status,
            elapsed_s=time.perf_counter() - started,
            retries=client.metadata.db.retries,
            longest_wait_s=client.metadata.db.longest_wait_s,
        )
        client.close()
    except BaseException:
        out["error"] = traceback.format_exc()
    out["thread_errors"] = thread_errors
    results.put(out)


# -- R04 ---------------------------------------------------------------------------------------


def r04_opener(root: str, url: str, barrier: Any, results: Any) -> None:
    """Open the store (create or upgrade its schema) at the same moment as the others."""
    thread_errors = _prepare(root, 10.0)
    out: dict[str, Any] = {}
    try:
        import logging

        from loopml.store import MetadataStore

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                message = record.getMessage()
                if message.startswith("Running upgrade"):
                    out.setdefault("upgrades", []).append(message)

        migration_log = logging.getLogger("alembic.runtime.migration")
        migration_log.setLevel(logging.INFO)
        migration_log.addHandler(Collect())
        store = MetadataStore(url)
        barrier.wait(timeout=120)
        started = time.perf_counter()
        store.open()
        out["open_s"] = time.perf_counter() - started
        out["runs"] = len(store.search(limit=10_000))
        store.close()
    except BaseException:
        out["error"] = traceback.format_exc()
    out["thread_errors"] = thread_errors
    results.put(out)


# -- running a crowd ---------------------------------------------------------------------------


def run_all(
    ctx: BaseContext,
    targets: list[tuple[Any, tuple[Any, ...]]],
    results: Any,
    *,
    timeout: float = 150,
) -> list[dict[str, Any]]:
    """Start every target, collect one result from each, and join them all."""
    procs = [ctx.Process(target=fn, args=args) for fn, args in targets]  # type: ignore[attr-defined]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    out = []
    try:
        for _ in procs:
            out.append(results.get(timeout=max(1.0, deadline - time.monotonic())))
    finally:
        for p in procs:
            p.join(timeout=max(1.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
    exit_codes = [p.exitcode for p in procs]
    assert exit_codes == [0] * len(procs), exit_codes
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


# -- R03 for the model registry ------------------------------------------------------------


def r03_registrar(
    root: str, url: str, artifacts: str, index: int, barrier: Any, results: Any
) -> None:
    """Register a model of its own as the next version of "m", then promote it to
    "champion" at the same moment as every other process."""
    thread_errors = _prepare(root, 10.0)
    out: dict[str, Any] = {}
    try:
        from loopml.errors import ConflictError
        from loopml.registry.promotion import promote
        from loopml.registry.versions import register
        from loopml.tracking.client import Client

        client = Client(store_uri=url, artifacts_uri=artifacts).open()
        barrier.wait(timeout=120)
        version, created = register("m", {"weights": [index]}, client=client)
        out.update(number=version.number, created=created)
        barrier.wait(timeout=120)
        try:
            promote("m", version.number, to="champion", client=client)
            out["promoted"] = True
        except ConflictError as exc:
            out["promoted"] = False
            out["conflict"] = str(exc)
        client.close()
    except BaseException:
        out["error"] = traceback.format_exc()
    out["thread_errors"] = thread_errors
    results.put(out)
