"""Connections to the metadata database: SQLite rules, retries, and schema creation.

SQLite (RELIABILITY.md rule 1): every connection gets WAL, a 30 s busy timeout and
foreign keys; write transactions start with ``BEGIN IMMEDIATE`` so two writers never
deadlock upgrading a read lock. That needs two engines on the same file, because the
``begin`` hook applies to every transaction of an engine and readers must not queue
behind writers. PostgreSQL uses one engine for both.

Schema creation and upgrades run once, under a lock (a file lock next to the SQLite file,
``pg_advisory_lock`` on PostgreSQL), so 16 processes opening a new store at once create
it exactly once. The fast path, an up-to-date store, reads one row and never imports
Alembic.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from loopml._crashpoints import crash_point
from loopml.errors import InvalidParameterError, StoreUnavailableError

HEAD_REVISION = "0002"
BUSY_TIMEOUT_MS = 30_000
_MIGRATION_LOCK_ID = 0x100F_0001
_RETRYABLE_PG_CODES = {"40001", "40P01"}  # serialization failure, deadlock detected
_NETWORK_FS = {"nfs", "nfs4", "cifs", "smbfs", "smb3", "9p", "fuse.sshfs"}

T = TypeVar("T")


def _is_retryable(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in _RETRYABLE_PG_CODES:
        return True
    text = str(orig or exc).lower()
    return "database is locked" in text or "database is busy" in text


def _first_line(error: object) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _filesystem_type(path: Path) -> str:
    """The mount type holding ``path`` (longest matching mount point in /proc/mounts)."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    best, kind = "", ""
    target = str(path.resolve())
    for line in lines:
        parts = line.split()
        inside = len(parts) >= 3 and (
            target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")
        )
        if inside and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind


class Database:
    """The metadata database: engines plus a retrying write transaction.

    Args:
        url: an SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.retries = 0
        self.busy_waits = 0
        self.longest_wait_s = 0.0
        self._read: Engine | None = None
        self._write: Engine | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        db = sa.engine.make_url(self.url).database
        return Path(db) if db and db != ":memory:" else None

    def connect(self) -> None:
        """Create the engines and bring the schema to the head revision."""
        if self._write is not None:
            return
        try:
            self._create_engines()
            self._ensure_schema()
        except OperationalError as exc:
            self.dispose()
            raise StoreUnavailableError(
                f"Cannot open the metadata store {self.safe_url}: {_first_line(exc.orig)}. Check that the "
                "path is writable or the database server is running, or set LOOPML_STORE_URI."
            ) from exc
        except DBAPIError as exc:
            self.dispose()
            raise StoreUnavailableError(
                f"Cannot open the metadata store {self.safe_url}: {_first_line(exc.orig)}."
            ) from exc

    def _create_engines(self) -> None:
        if self._write is not None:
            return
        if self.is_sqlite:
            self._read, self._write = self._sqlite_engines()
        else:
            self._read = self._write = sa.create_engine(self.url, pool_pre_ping=True)

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for messages."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def _sqlite_engines(self) -> tuple[Engine, Engine]:
        path = self.sqlite_path
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailableError(
                    f"Cannot create the store folder {path.parent}: {exc.strerror}. "
                    "Pick a writable location with LOOPML_STORE_URI or [store] uri in loopml.toml."
                ) from exc
            kind = _filesystem_type(path.parent)
            if kind in _NETWORK_FS and not os.environ.get("LOOPML_ALLOW_NETWORK_FS"):
                raise InvalidParameterError(
                    f"The store {path} is on a network file system ({kind}); SQLite corrupts there "
                    "under concurrent writers. Use a local disk or PostgreSQL "
                    "(LOOPML_STORE_URI=postgresql+psycopg://…), or set LOOPML_ALLOW_NETWORK_FS=1 "
                    "if only one process will ever write."
                )
        engines = []
        for begin in ("BEGIN", "BEGIN IMMEDIATE"):
            engine = sa.create_engine(
                self.url,
                connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            _install_sqlite_hooks(engine, begin, self._record_wait)
            engines.append(engine)
        return engines[0], engines[1]

    def _record_wait(self, seconds: float) -> None:
        """Time spent waiting for SQLite's write lock inside busy_timeout (for R01's report)."""
        if seconds > 0.005:
            self.busy_waits += 1
        self.longest_wait_s = max(self.longest_wait_s, seconds)

    def dispose(self) -> None:
        for engine in {e for e in (self._read, self._write) if e is not None}:
            engine.dispose()
        self._read = self._write = None

    @property
    def read_engine(self) -> Engine:
        self.connect()
        assert self._read is not None
        return self._read

    @property
    def write_engine(self) -> Engine:
        self.connect()
        assert self._write is not None
        return self._write

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a read transaction."""
        return self._run(self.read_engine, fn)

    def write(self, fn: Callable[[Connection], T], *, attempts: int = 8) -> T:
        """Run ``fn`` in a write transaction, retrying on lock, deadlock and serialization errors.

        ``fn`` must be safe to run again: it runs in a fresh transaction after a rollback.
        """

        def then_commit(conn: Connection) -> T:
            result = fn(conn)
            crash_point("db-commit")
            return result

        return self._run(self.write_engine, then_commit, attempts=attempts)

    def _run(self, engine: Engine, fn: Callable[[Connection], T], *, attempts: int = 8) -> T:
        delay = 0.01
        for attempt in range(attempts):
            started = time.monotonic()
            try:
                with engine.begin() as conn:
                    return fn(conn)
            except DBAPIError as exc:
                if not _is_retryable(exc) or attempt == attempts - 1:
                    if isinstance(exc, OperationalError):
                        raise StoreUnavailableError(
                            f"The metadata store {self.safe_url} failed: {_first_line(exc.orig)}. If it is "
                            "read-only or locked by another program, fix its permissions or stop "
                            "that program; nothing was written by this call."
                        ) from exc
                    raise
                self.retries += 1
                self.longest_wait_s = max(self.longest_wait_s, time.monotonic() - started)
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    # -- schema ---------------------------------------------------------------------------

    def current_revision(self, conn: Connection) -> str | None:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        return str(row[0]) if row else None

    def _ensure_schema(self) -> None:
        assert self._read is not None
        with self._read.connect() as conn:
            try:
                row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
            except DBAPIError:
                row = None
            if row and row[0] == HEAD_REVISION:
                return
        self.migrate()

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` under the migration lock (idempotent)."""
        self._create_engines()
        if self.is_sqlite:
            from filelock import FileLock

            path = self.sqlite_path
            lock_path = f"{path}.migrate.lock" if path else os.devnull
            with FileLock(lock_path, timeout=120):
                self._upgrade(revision)
        else:
            assert self._write is not None
            with self._write.connect() as conn:
                conn.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATION_LOCK_ID})")
                try:
                    self._upgrade(revision)
                finally:
                    conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK_ID})")
                    conn.commit()

    def _upgrade(self, revision: str) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.util import CommandError

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        assert self._write is not None
        with self._write.connect() as conn:
            current = self.current_revision(conn)
            if current == (HEAD_REVISION if revision == "head" else revision):
                return
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, revision)
            except CommandError as exc:
                raise StoreUnavailableError(
                    f"The metadata store {self.safe_url} is at schema revision {current!r}, which this "
                    f"loopml (schema {HEAD_REVISION}) does not know: a newer loopml wrote it. Upgrade "
                    "loopml (pip install -U loopml) to use this store."
                ) from exc
            conn.commit()


def _install_sqlite_hooks(engine: Engine, begin: str, on_wait: Callable[[float], None]) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        # WAL + NORMAL survives process crashes; blobs are fsynced before their rows commit.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        started = time.monotonic()
        conn.exec_driver_sql(begin)
        on_wait(time.monotonic() - started)
