"""R04: 16 processes open a store that does not exist yet, then 16 open an old-revision store.

Pass: every process succeeds; the schema is created or upgraded exactly once (one process
logs Alembic's "Running upgrade" lines, and ``alembic_version`` holds a single row at
``HEAD_REVISION``); the migrated schema equals ``loopml.store.schema``; old rows survive.
Report: maximum and median open latency; which process migrated.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import _store_workers as w
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from loopml.store import HEAD_REVISION, MetadataStore
from loopml.store.schema import metadata

PROCESSES = 16


def _open_in_crowd(project: Path, url: str) -> list[dict[str, Any]]:
    ctx = w.context()
    barrier = ctx.Barrier(PROCESSES)  # type: ignore[attr-defined]
    results = ctx.Queue()  # type: ignore[attr-defined]
    reports = w.run_all(
        ctx, [(w.r04_opener, (str(project), url, barrier, results))] * PROCESSES, results
    )
    errors = [r["error"] for r in reports if "error" in r] + [
        e for r in reports for e in r["thread_errors"]
    ]
    assert errors == [], "\n".join(errors)
    return reports


def _check_store(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert [
                r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            ] == [HEAD_REVISION]
            assert list(compare_metadata(MigrationContext.configure(conn), metadata)) == []
    finally:
        engine.dispose()
    if url.startswith("sqlite"):
        with sqlite3.connect(sa.engine.make_url(url).database or "") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def _report(label: str, reports: list[dict[str, Any]]) -> str:
    latencies = [r["open_s"] for r in reports]
    migrators = [i for i, r in enumerate(reports) if r.get("upgrades")]
    steps = [u for r in reports for u in r.get("upgrades", [])]
    return (
        f"  {label}: {PROCESSES}/{PROCESSES} opened; max open {max(latencies):.2f} s, "
        f"median {statistics.median(latencies):.2f} s; {len(migrators)} process migrated "
        f"({len(steps)} revision steps), {PROCESSES - len(migrators)} waited or found it done"
    )


def _old_store(url: str) -> str:
    """A store at revision 0001 holding one finished run."""
    w.create_store_at(url, "0001")
    run_id = uuid.uuid4().hex
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, pipeline, number, name, kind, status, started_at, heartbeat_at, "
                    "lease_s, lease_token, host, pid, executor) VALUES (:id, 'old', 1, 'old#1', 'pipeline', "
                    "'succeeded', :t, :t, 25.0, :tok, 'h', 1, 'local')"
                ),
                {"id": run_id, "t": time.time(), "tok": uuid.uuid4().hex},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO params (run_id, key, value, num) VALUES (:id, 'alpha', '0.5', 0.5)"
                ),
                {"id": run_id},
            )
    finally:
        engine.dispose()
    return run_id


def test_r04_first_open_and_migration_race(store_url: str, project: Path, request: Any) -> None:
    backend = "sqlite" if store_url.startswith("sqlite") else "postgres"
    if backend == "sqlite":
        assert not (project / ".loopml").exists()

    fresh = _open_in_crowd(project, store_url)
    _check_store(store_url)
    assert sum(1 for r in fresh if r.get("upgrades")) == 1
    steps = [u for r in fresh for u in r.get("upgrades", [])]
    assert "upgrade  -> 0001" in steps[0] and f" -> {HEAD_REVISION}," in steps[-1], steps
    assert all(r["runs"] == 0 for r in fresh)

    if backend == "sqlite":
        old_url = f"sqlite:///{project / 'old' / 'store.db'}"
    else:
        old_url = request.getfixturevalue("postgres").create_database(
            f"r04_{uuid.uuid4().hex[:12]}"
        )
    old_id = _old_store(old_url)
    upgraded = _open_in_crowd(project, old_url)
    _check_store(old_url)
    assert sum(1 for r in upgraded if r.get("upgrades")) == 1
    steps = [u for r in upgraded for u in r.get("upgrades", [])]
    assert "upgrade 0001 -> " in steps[0] and f" -> {HEAD_REVISION}," in steps[-1], steps
    assert all(r["runs"] == 1 for r in upgraded)  # every process sees the old run

    store = MetadataStore(old_url).open()
    try:
        run = store.runs.get("old#1")
        assert run.id == old_id and run.params == {"alpha": "0.5"} and run.cost is None
    finally:
        store.close()

    print(f"\nR04 {backend}:\n{_report('new store', fresh)}\n{_report('store at 0001', upgraded)}")
