"""Schema migrations on both backends: old stores upgrade on open and keep their data.

A store at revision 0001 is built with Alembic, filled with rows written the way 0001
wrote them, then opened by today's ``MetadataStore``: it must reach ``HEAD_REVISION``
once, keep every row, and end with exactly the schema ``loopml.store.schema`` describes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from loopml.errors import InvalidParameterError, StoreUnavailableError
from loopml.store import HEAD_REVISION, MetadataStore, StepWrites
from loopml.store.engine import Database
from loopml.store.schema import metadata


def create_store_at(url: str, revision: str) -> None:
    db = Database(url)
    try:
        db.migrate(revision)
    finally:
        db.dispose()


def _sa_url(url: str) -> str:
    return Database(url).sqlalchemy_url()


def _columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(_sa_url(url))
    try:
        with engine.connect() as conn:
            return {c["name"] for c in sa.inspect(conn).get_columns(table)}
    finally:
        engine.dispose()


def _version_rows(url: str) -> list[str]:
    engine = sa.create_engine(_sa_url(url))
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    finally:
        engine.dispose()


def _schema_diffs(url: str) -> list[Any]:
    engine = sa.create_engine(_sa_url(url))
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))
    finally:
        engine.dispose()


def _fill_revision_0001(url: str) -> dict[str, Any]:
    """Rows as loopml at revision 0001 wrote them (plain SQL: no today's code involved)."""
    run_id, step_run_id = uuid.uuid4().hex, uuid.uuid4().hex
    digest = "ab" * 32
    now = time.time()
    engine = sa.create_engine(_sa_url(url))
    statements = [
        (
            "INSERT INTO runs (id, pipeline, number, name, kind, status, started_at, ended_at, duration_s, "
            "heartbeat_at, lease_s, lease_token, host, pid, executor, git_commit, git_dirty, environment, cpu_s) "
            "VALUES (:id, 'train', 1, 'train#1', 'pipeline', 'succeeded', :t, :t2, 2.0, :t, 25.0, :tok, 'old-host', "
            "77, 'local', :commit, :dirty, '{\"python\": \"3.11.0\"}', 1.5)",
            {
                "id": run_id,
                "t": now - 2,
                "t2": now,
                "tok": uuid.uuid4().hex,
                "commit": "c" * 40,
                "dirty": False,
            },
        ),
        (
            "INSERT INTO params (run_id, key, value, num) VALUES (:id, 'alpha', '0.5', 0.5)",
            {"id": run_id},
        ),
        ("INSERT INTO tags (run_id, key, value) VALUES (:id, 'team', 'core')", {"id": run_id}),
        (
            "INSERT INTO metrics (run_id, key, step, value, timestamp) VALUES (:id, 'loss', 0, 0.9, :t), "
            "(:id, 'loss', 1, 0.4, :t)",
            {"id": run_id, "t": now},
        ),
        (
            "INSERT INTO latest_metrics (run_id, key, step, value) VALUES (:id, 'loss', 1, 0.4)",
            {"id": run_id},
        ),
        (
            "INSERT INTO step_runs (id, run_id, name, position, status, cached, wall_s) "
            "VALUES (:sid, :id, 'fit', 0, 'succeeded', :cached, 1.0)",
            {"sid": step_run_id, "id": run_id, "cached": False},
        ),
        (
            "INSERT INTO artifacts (digest, materializer, type_name, size, meta, created_at) "
            "VALUES (:d, 'bytes', 'bytes', 4, '{}', :t)",
            {"d": digest, "t": now},
        ),
        (
            "INSERT INTO artifact_links (run_id, step_run_id, digest, direction, name) "
            "VALUES (:id, :sid, :d, 'output', 'fit')",
            {"id": run_id, "sid": step_run_id, "d": digest},
        ),
    ]
    try:
        with engine.begin() as conn:
            for sql, values in statements:
                conn.execute(sa.text(sql), values)
    finally:
        engine.dispose()
    return {"run_id": run_id, "step_run_id": step_run_id, "digest": digest}


def test_a_store_at_0001_upgrades_to_head_on_open_and_keeps_its_data(store_url: str) -> None:
    create_store_at(store_url, "0001")
    assert _version_rows(store_url) == ["0001"]
    old = _fill_revision_0001(store_url)

    store = MetadataStore(store_url).open()
    try:
        assert _version_rows(store_url) == [HEAD_REVISION]
        columns = _columns(store_url, "runs")
        assert {"cost", "env_digest", "owner"} <= columns and "environment" not in columns
        assert "touched_at" in _columns(store_url, "artifacts")

        run = store.runs.get("train#1")
        assert run.id == old["run_id"]
        assert run.status == "succeeded" and run.host == "old-host" and run.cost is None
        # the per-run environment JSON moved into the shared environments table
        assert run.environment == {"python": "3.11.0"}
        assert run.params == {"alpha": "0.5"} and run.tags == {"team": "core"}
        assert run.metrics == {"loss": 0.4}
        assert [(p.step, p.value) for p in store.metrics.history(run.id, "loss")] == [
            (0, 0.9),
            (1, 0.4),
        ]
        assert [s.name for s in store.steps.for_run(run.id)] == ["fit"]
        assert [(link.digest, link.step) for link in store.lineage.links(run_id=run.id)] == [
            (old["digest"], "fit")
        ]
        assert store.lineage.get(old["digest"]).size == 4

        # the new schema works: cost, step cache, and the numbering continues
        new, token = store.runs.create(
            pipeline="train", host="h", pid=1, executor="local", lease_s=60
        )
        new_id = new.id
        assert new.number == 2
        writes = StepWrites()
        writes.cache_entry("k" * 64, "fit", {"outputs": {"fit": old["digest"]}}, old["step_run_id"])
        store.steps.apply(new_id, writes)
        assert store.runs.finish(new_id, token, "succeeded", cost=0.5)
        assert store.runs.get(new_id).cost == 0.5
        hit = store.steps.cache_hit("k" * 64)
        assert hit is not None and hit["outputs"] == {"fit": old["digest"]}
        assert hit["sizes"] == {old["digest"]: 4}
        with pytest.raises(InvalidParameterError, match="refused"):
            store.db.write(lambda tx: tx.execute("UPDATE runs SET status = 'nonsense'"))
    finally:
        store.close()
    assert _version_rows(store_url) == [HEAD_REVISION]


def test_migrations_produce_exactly_the_declared_schema(store_url: str) -> None:
    MetadataStore(store_url).open().close()
    assert _schema_diffs(store_url) == []


def test_an_upgraded_store_has_the_declared_schema(store_url: str) -> None:
    create_store_at(store_url, "0001")
    MetadataStore(store_url).open().close()
    assert _schema_diffs(store_url) == []


def test_revision_0001_lacks_what_0002_adds(store_url: str) -> None:
    """The upgrade test above is meaningful: 0001 really is the older schema."""
    create_store_at(store_url, "0001")
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "cost" not in {c["name"] for c in inspector.get_columns("runs")}
            assert not inspector.has_table("step_cache")
    finally:
        engine.dispose()


def test_head_revision_is_the_last_migration() -> None:
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import loopml.store.engine as engine_module

    config = Config()
    config.set_main_option(
        "script_location", str(Path(engine_module.__file__).parent / "migrations")
    )
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def test_opening_twice_after_an_upgrade_changes_nothing(store_url: str) -> None:
    create_store_at(store_url, "0001")
    _fill_revision_0001(store_url)
    for _ in range(2):
        store = MetadataStore(store_url).open()
        assert len(store.search()) == 1
        store.close()
    assert _version_rows(store_url) == [HEAD_REVISION]


def test_database_migrate_to_an_old_revision(store_url: str) -> None:
    """``Database(url).migrate(rev)`` on an empty database stops at ``rev``; a later open goes on."""
    db = Database(store_url)
    try:
        db.migrate("0001")
        db.migrate("0001")  # idempotent
    finally:
        db.dispose()
    assert _version_rows(store_url) == ["0001"]
    MetadataStore(store_url).open().close()
    assert _version_rows(store_url) == [HEAD_REVISION]


def test_a_store_from_a_newer_loopml_is_refused_clearly(store_url: str) -> None:
    """A revision this loopml does not know: StoreUnavailableError saying what to do; data untouched."""
    MetadataStore(store_url).open().close()
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    finally:
        engine.dispose()
    store = MetadataStore(store_url)
    try:
        with pytest.raises(StoreUnavailableError) as info:
            store.open()
    finally:
        store.close()
    assert "9999" in str(info.value)
    assert "upgrade" in str(info.value).lower()
    assert _version_rows(store_url) == ["9999"]
