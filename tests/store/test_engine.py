"""The metadata database: SQLite connection rules, opening errors, schema at head.

RELIABILITY.md rule 1 / R01 pass criteria: every SQLite connection of the write engine
runs in WAL mode with a busy timeout of at least 5 s and foreign keys on, and write
transactions start with ``BEGIN IMMEDIATE``. A store that cannot be opened raises
``StoreUnavailableError`` with a message that names the store, never a driver exception.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from loopml.errors import StoreUnavailableError
from loopml.store import HEAD_REVISION, MetadataStore
from loopml.tracking.client import Client


def _sqlite_url(project: Path) -> str:
    return f"sqlite:///{project / '.loopml' / 'store.db'}"


def _pragma(store: MetadataStore, name: str) -> Any:
    return store.db.write(lambda tx: tx.scalar(f"PRAGMA {name}"))


def _new_run(store: MetadataStore) -> str:
    return store.runs.create(pipeline="p", host="h", pid=1, executor="local", lease_s=30)[0].id


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_clean_unavailable(exc: StoreUnavailableError, *needles: str) -> None:
    """The error is ours, names the store, and carries no driver exception type in its text."""
    assert isinstance(exc, StoreUnavailableError)
    message = str(exc)
    for needle in needles:
        assert needle in message, message
    assert "Traceback" not in message
    assert "sqlalchemy" not in message.lower()
    assert "sqlalche.me" not in message


# -- SQLite connection rules ----------------------------------------------------------------


def test_sqlite_write_connections_use_wal_busy_timeout_and_foreign_keys(project: Path) -> None:
    store = MetadataStore(_sqlite_url(project)).open()
    try:
        assert str(_pragma(store, "journal_mode")).lower() == "wal"
        assert int(_pragma(store, "busy_timeout")) >= 5000
        assert int(_pragma(store, "foreign_keys")) == 1
    finally:
        store.close()


def test_sqlite_read_connections_have_the_same_rules(project: Path) -> None:
    store = MetadataStore(_sqlite_url(project)).open()
    try:

        def pragmas(tx: Any) -> tuple[Any, ...]:
            return tuple(
                tx.scalar(f"PRAGMA {n}") for n in ("journal_mode", "busy_timeout", "foreign_keys")
            )

        mode, timeout, fks = store.db.read(pragmas)
        assert str(mode).lower() == "wal"
        assert int(timeout) >= 5000
        assert int(fks) == 1
    finally:
        store.close()


def test_sqlite_writes_begin_immediate(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What SQLite itself executes (sqlite3 trace): a write transaction opens with BEGIN IMMEDIATE."""
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    store = MetadataStore(_sqlite_url(project)).open()
    try:
        run_id = _new_run(store)
        store.metrics.write_batch(run_id, [("loss", 0, 1.0, time.time())])
        begins = [s.strip().upper() for s in statements if s.strip().upper().startswith("BEGIN")]
        inserts = [i for i, s in enumerate(statements) if s.lstrip().upper().startswith("INSERT")]
        assert inserts, statements
        assert begins and all(b == "BEGIN IMMEDIATE" for b in begins), begins
        first_begin = next(
            i for i, s in enumerate(statements) if s.strip().upper().startswith("BEGIN")
        )
        assert first_begin < inserts[0]
    finally:
        store.close()


def test_sqlite_readers_do_not_queue_behind_a_writer(project: Path) -> None:
    """WAL: while another connection holds the write lock, reads answer at once."""
    store = MetadataStore(_sqlite_url(project)).open()
    run_id = _new_run(store)
    other = sqlite3.connect(str(project / ".loopml" / "store.db"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE runs SET host = 'elsewhere'")
        started = time.monotonic()
        record = store.runs.get(run_id)
        assert time.monotonic() - started < 2.0
        assert record.host == "h"  # the uncommitted change is invisible
    finally:
        other.execute("ROLLBACK")
        other.close()
        store.close()


def test_sqlite_writer_waits_for_the_lock_instead_of_failing(project: Path) -> None:
    store = MetadataStore(_sqlite_url(project)).open()
    other = sqlite3.connect(
        str(project / ".loopml" / "store.db"), isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    try:
        started = time.monotonic()
        number = store.runs.create(pipeline="p", host="h", pid=1, executor="local", lease_s=30)[
            0
        ].number
        waited = time.monotonic() - started
        assert number == 1
        assert waited >= 0.3  # it really waited for the other writer
    finally:
        release.join()
        other.close()
        store.close()


# -- opening errors ----------------------------------------------------------------------


def test_sqlite_store_under_a_regular_file_is_unavailable(project: Path) -> None:
    blocker = project / "not-a-folder"
    blocker.write_text("x")
    url = f"sqlite:///{blocker / 'x.db'}"
    with pytest.raises(StoreUnavailableError) as info:
        MetadataStore(url).open()
    _assert_clean_unavailable(info.value, str(blocker))


def test_sqlite_store_that_cannot_be_created_is_unavailable() -> None:
    url = "sqlite:////proc/loopml-cannot-create.db"
    with pytest.raises(StoreUnavailableError) as info:
        MetadataStore(url).open()
    _assert_clean_unavailable(info.value, "loopml-cannot-create.db")


def test_sqlite_file_that_is_not_a_database_is_unavailable(project: Path) -> None:
    path = project / ".loopml" / "store.db"
    path.parent.mkdir()
    path.write_bytes(b"this is not a SQLite database, just text" * 200)
    with pytest.raises(StoreUnavailableError) as info:
        MetadataStore(f"sqlite:///{path}").open()
    _assert_clean_unavailable(info.value, str(path))
    assert path.read_bytes().startswith(b"this is not a SQLite")  # left as it was


def test_client_open_reports_an_unavailable_store(project: Path) -> None:
    blocker = project / "file"
    blocker.write_text("x")
    client = Client(store_uri=str(blocker / "store.db"))
    with pytest.raises(StoreUnavailableError) as info:
        client.open()
    _assert_clean_unavailable(info.value, str(blocker))


def test_postgres_on_a_closed_port_is_unavailable() -> None:
    port = _closed_port()
    url = f"postgresql+psycopg://loopml:s3cret-pw@127.0.0.1:{port}/nosuchdb"
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        MetadataStore(url).open()
    assert time.monotonic() - started < 30
    _assert_clean_unavailable(info.value, f"127.0.0.1:{port}")
    assert "s3cret-pw" not in str(info.value)  # the password is masked


def test_postgres_missing_database_is_unavailable(postgres: Any) -> None:
    url = postgres.url_for("loopml_no_such_database")
    with pytest.raises(StoreUnavailableError) as info:
        MetadataStore(url).open()
    _assert_clean_unavailable(info.value, "loopml_no_such_database")


def test_a_failed_open_can_be_retried(project: Path) -> None:
    """After the cause is fixed, the same store object opens."""
    blocker = project / "later"
    blocker.write_text("x")
    store = MetadataStore(f"sqlite:///{blocker / 'store.db'}")
    with pytest.raises(StoreUnavailableError):
        store.open()
    blocker.unlink()
    store.open()
    try:
        new, _ = store.runs.create(pipeline="p", host="h", pid=1, executor="local", lease_s=5)
        assert new.number == 1
    finally:
        store.close()


# -- schema on open (both backends) ----------------------------------------------------------


def _version_rows(store: MetadataStore) -> list[str]:
    return [
        r[0] for r in store.db.read(lambda tx: tx.all("SELECT version_num FROM alembic_version"))
    ]


def test_open_creates_the_schema_at_head_once(store_url: str) -> None:
    store = MetadataStore(store_url).open()
    try:
        assert _version_rows(store) == [HEAD_REVISION]
        import sqlalchemy as sa

        engine = sa.create_engine(store.db.sqlalchemy_url())
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
        engine.dispose()
        assert {
            "runs",
            "params",
            "tags",
            "metrics",
            "latest_metrics",
            "step_runs",
            "artifacts",
            "artifact_links",
            "step_cache",
        } <= names
    finally:
        store.close()
    again = MetadataStore(store_url).open()
    try:
        assert _version_rows(again) == [HEAD_REVISION]
    finally:
        again.close()


def test_open_is_idempotent_and_keeps_data(store_url: str) -> None:
    store = MetadataStore(store_url)
    assert store.open() is store
    assert store.open() is store
    run_id = _new_run(store)
    store.close()
    reopened = MetadataStore(store_url).open()
    try:
        assert reopened.runs.get(run_id).label == "p#1"
    finally:
        reopened.close()


def test_repr_hides_the_password(postgres: Any) -> None:
    url = postgres.url_for("whatever").replace("loopml@", "loopml:hunter2@")
    store = MetadataStore(url)
    assert "hunter2" not in repr(store)
    assert "whatever" in repr(store)


def test_a_client_dropped_without_close_closes_its_connections(store_url: str) -> None:
    """No "connection deleted while still open" warning lands in unrelated code later."""
    import gc
    import warnings

    client = Client(store_uri=store_url).open()
    assert client.search_runs() == []
    pooled = list(client.metadata.db._idle)
    assert pooled  # the pool holds open connections now
    del client
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    for conn in pooled:
        assert conn.closed if hasattr(conn, "closed") else _sqlite_closed(conn)


def _sqlite_closed(conn: Any) -> bool:
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False
