"""R01: 8 writer processes × 10,000 points into one embedded SQLite store, 2 readers polling.

Pass: no exception in any process (calls, background threads, exit codes); the stored
multiset of ``(run, key, step, value)`` equals what was logged, exactly; every run ended
``succeeded``; ``PRAGMA integrity_check`` is ``ok``; connections use WAL, a busy timeout of
at least 5 s, foreign keys, and ``BEGIN IMMEDIATE`` for writes.
Report: points/s, p50/p99 of one log call and of one flush, SQLITE_BUSY retries, longest wait.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import _store_workers as w

from loopml.store import MetadataStore

SOAK = bool(os.environ.get("LOOPML_SOAK"))  # soak size on demand: LOOPML_SOAK=1 pytest …
WRITERS = 16 if SOAK else 8
READERS = 2
# × (1 single point + a batch of 3) = 10,000 points per writer (soak: 100,000)
ITERATIONS = 25_000 if SOAK else 2_500
POINTS_PER_WRITER = ITERATIONS * len(w.WRITER_KEYS)


def _checksum(rows: list[tuple[str, str, int, float]]) -> str:
    digest = hashlib.sha256()
    for row in sorted(rows):
        digest.update(repr(row).encode())
    return digest.hexdigest()


def _collect(results: Any, n: int, deadline: float) -> list[dict[str, Any]]:
    return [results.get(timeout=max(1.0, deadline - time.monotonic())) for _ in range(n)]


def test_r01_concurrent_metric_logging_sqlite(project: Path) -> None:
    db_path = project / ".loopml" / "store.db"
    url = f"sqlite:///{db_path}"
    artifacts = str(project / ".loopml" / "blobs")
    MetadataStore(url).open().close()

    ctx = w.context()
    barrier = ctx.Barrier(WRITERS + READERS)  # type: ignore[attr-defined]
    stop = ctx.Event()  # type: ignore[attr-defined]
    results = ctx.Queue()  # type: ignore[attr-defined]
    procs = [
        ctx.Process(
            target=w.r01_writer,
            args=(str(project), url, artifacts, i, ITERATIONS, barrier, results),
        )  # type: ignore[attr-defined]
        for i in range(WRITERS)
    ] + [
        ctx.Process(
            target=w.r01_reader, args=(str(project), url, artifacts, i, barrier, stop, results)
        )  # type: ignore[attr-defined]
        for i in range(READERS)
    ]
    deadline = time.monotonic() + 150
    for p in procs:
        p.start()
    try:
        first = _collect(results, WRITERS, deadline)
        stop.set()
        reports = first + _collect(results, READERS, deadline)
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=max(1.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()

    errors = [r["error"] for r in reports if "error" in r] + [
        e for r in reports for e in r["thread_errors"]
    ]
    assert errors == [], "\n".join(errors)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    writers = sorted((r for r in reports if r["role"] == "writer"), key=lambda r: r["index"])
    readers = [r for r in reports if r["role"] == "reader"]
    assert len(writers) == WRITERS and len(readers) == READERS
    problems = [p for r in readers for p in r["problems"]]
    assert problems == []
    assert all(r["polls"] > 0 for r in readers)
    assert [r["status"] for r in writers] == ["succeeded"] * WRITERS

    # the exact multiset: what each writer logged, against what the store holds
    expected = [
        (r["run_id"], key, step, w.expected_value(r["index"], key, step))
        for r in writers
        for step in range(ITERATIONS)
        for key in w.WRITER_KEYS
    ]
    with sqlite3.connect(db_path) as conn:
        stored = [
            tuple(row) for row in conn.execute("SELECT run_id, key, step, value FROM metrics")
        ]
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        latest = dict(
            ((run_id, key), step)
            for run_id, key, step in conn.execute("SELECT run_id, key, step FROM latest_metrics")
        )
        fk_problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    assert len(stored) == len(expected) == WRITERS * POINTS_PER_WRITER
    assert _checksum(stored) == _checksum(expected)  # type: ignore[arg-type]
    assert sorted(stored) == sorted(expected)
    assert integrity == [("ok",)]
    assert fk_problems == []
    assert latest == {(r["run_id"], key): ITERATIONS - 1 for r in writers for key in w.WRITER_KEYS}

    # connection rules, read back from a write connection of the store
    store = MetadataStore(url).open()
    try:
        mode, busy, fks = store.db.write(
            lambda tx: [
                tx.scalar(f"PRAGMA {n}") for n in ("journal_mode", "busy_timeout", "foreign_keys")
            ]
        )
    finally:
        store.close()
    assert (str(mode).lower(), int(busy) >= 5000, int(fks)) == ("wal", True, 1)

    # report
    wall = max(r["t_end"] for r in writers) - min(r["t_start"] for r in writers)
    log_s = [x for r in writers for x in r["log_s"]]
    flush_s = [x for r in writers for x in r["flush_s"]]
    retries = sum(r["retries"] for r in reports)
    longest = max(r["longest_wait_s"] for r in reports)
    print(
        f"\nR01 SQLite {WRITERS} writers x {POINTS_PER_WRITER:,} points, {READERS} readers "
        f"({sum(r['polls'] for r in readers)} polls, {sum(r['points_seen'] for r in readers):,} points read)\n"
        f"  stored {len(stored):,} points = logged (sha256 {_checksum(stored)[:16]}), integrity ok\n"
        f"  throughput: {len(stored) / wall:,.0f} points/s (first start to last end {wall:.2f} s)\n"
        f"  log call:   p50 {w.percentile(log_s, 50) * 1e6:.1f} us, p99 {w.percentile(log_s, 99) * 1e6:.1f} us, "
        f"max {max(log_s) * 1e3:.2f} ms\n"
        f"  flush (1,000 points, one transaction): p50 {w.percentile(flush_s, 50) * 1e3:.1f} ms, "
        f"p99 {w.percentile(flush_s, 99) * 1e3:.1f} ms, max {max(flush_s) * 1e3:.1f} ms (waits inside busy_timeout)\n"
        f"  SQLITE_BUSY retries: {retries}, longest wait {longest * 1e3:.1f} ms"
    )
