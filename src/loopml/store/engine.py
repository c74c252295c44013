"""Connections to the metadata database: SQLite rules, retries, clocks, errors, schema.

Store operations talk to the DB-API driver (``sqlite3``, ``psycopg``) directly. SQLAlchemy
describes the schema (``schema.py``) and drives Alembic migrations, but it is imported only
when a store is created or upgraded: importing it costs more than the rest of a short
``python pipeline.py`` run (DESIGN.md §6 start-up budget), and the statements loopml runs
are few and fixed.

SQLite (RELIABILITY.md rule 1): every connection gets a 30 s busy timeout and foreign
keys; the file is in WAL mode; write transactions start with ``BEGIN IMMEDIATE`` so two
writers never deadlock upgrading a read lock. PostgreSQL transactions are retried on
serialization failures and deadlocks.

Time for leases comes from the database (``Tx.now``), never from the client: two hosts
with skewed clocks must not mark each other's live runs crashed.

Reading never creates: ``Database(url, readonly=True)`` refuses to create a store or its
folder (:class:`StoreNotFoundError`) and never changes its schema. When the file or its
folder is not writable (a read-only disk, an archived copy) it opens SQLite with
``mode=ro`` (``immutable=1`` where WAL's shared-memory file cannot be created) and
refuses writes; on a writable store it still lets the caller mark dead runs crashed.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from loopml._crashpoints import crash_point
from loopml.errors import (
    ConflictError,
    InvalidParameterError,
    LoopmlError,
    StoreCorruptError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from loopml.store._sqlite import enable_wal, filesystem_type, free_bytes

HEAD_REVISION = "0010"
BUSY_TIMEOUT_MS = 30_000
RESERVE_BYTES = 1 << 20  # freed on a full disk so that runs can still record how they ended
_MIGRATION_LOCK_ID = 0x100F_0001
_RETRYABLE_PG_CODES = {"40001", "40P01"}  # serialization failure, deadlock detected
_NETWORK_FS = {"nfs", "nfs4", "cifs", "smbfs", "smb3", "9p", "fuse.sshfs"}
_SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
_PG_NOW = "(extract(epoch from now())::double precision)"  # stable within a transaction
SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg", "postgres")

T = TypeVar("T")


class Tx:
    """One open transaction: run statements written with ``?`` placeholders on any backend."""

    __slots__ = ("_cur", "_pg", "now")

    def __init__(self, cursor: Any, postgres: bool) -> None:
        self._cur = cursor
        self._pg = postgres
        #: SQL expression for the database's clock, in Unix seconds.
        self.now = _PG_NOW if postgres else _SQLITE_NOW

    def _sql(self, sql: str) -> str:
        return _pg_sql(sql) if self._pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        self._cur.execute(self._sql(sql), params)
        return int(self._cur.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self._cur.executemany(self._sql(sql), rows)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(self._sql(sql), params)
        return list(self._cur.fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self._cur.execute(self._sql(sql), params)
        row = self._cur.fetchone()
        return None if row is None else tuple(row)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    def marks(self, n: int) -> str:
        """``?, ?, …`` for an IN list of ``n`` values."""
        return ", ".join("?" * n)


_PG_SQL: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    converted = _PG_SQL.get(sql)
    if converted is None:  # loopml's SQL never holds a literal '?' or '%'
        converted = _PG_SQL[sql] = sql.replace("%", "%%").replace("?", "%s")
    return converted


# --- URLs ------------------------------------------------------------------------------


_FORMS = (
    "expected 'sqlite:///PATH' (embedded) or 'postgresql://USER@HOST/DB' (team); set "
    "LOOPML_STORE_URI or [store] uri in loopml.toml (a plain path means SQLite)."
)


def parse_url(url: str) -> tuple[str, str]:
    """Split a store URL into (backend, target): ``("sqlite", path)`` or ``("postgresql", conninfo)``.

    Raises:
        InvalidParameterError: the URL is malformed or names a database loopml cannot use.
    """
    if not isinstance(url, str) or "://" not in url:
        raise InvalidParameterError(f"Store URI {url!r}: {_FORMS}")
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        rest = url[len("sqlite://") :]
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise InvalidParameterError(
                f"Store URI {url!r} has no file path (an in-memory store would be lost when the "
                f"process ends): {_FORMS}"
            )
        return "sqlite", unquote(rest[1:].partition("?")[0])
    if scheme in ("postgresql", "postgresql+psycopg", "postgres"):
        conninfo = "postgresql://" + url.partition("://")[2]
        try:
            parts = urlsplit(conninfo)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise InvalidParameterError(
                f"Store URI {_mask(url)!r} is malformed ({exc}): {_FORMS}"
            ) from None
        if not parts.path.strip("/"):
            raise InvalidParameterError(
                f"Store URI {_mask(url)!r}: name the database, e.g. postgresql://user@host/loopml; "
                f"{_FORMS}"
            )
        return "postgresql", conninfo
    raise InvalidParameterError(
        f"Store URI {_mask(url)!r}: loopml cannot use {scheme!r} databases; {_FORMS}"
    )


def _mask(url: str) -> str:
    """The URL with its password replaced by ``***``, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rpartition("@")
        user = netloc[0].partition(":")[0]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))
    except ValueError:
        return url.split("@")[-1]


def _first_line(error: object) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


class _Retry(Exception):
    """Internal: the transaction lost a race (lock, deadlock, serialization) and may run again."""


class Database:
    """The metadata database: pooled DB-API connections and retrying transactions.

    Args:
        url: ``sqlite:///path/store.db`` or ``postgresql://user@host/db``.
        readonly: open an existing store for reading; never create or change files.
    """

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        self.url = url
        self.backend, self._target = parse_url(url)
        self.readonly = readonly
        self.retries = 0
        self.busy_waits = 0
        self.longest_wait_s = 0.0
        self._idle: list[Any] = []
        self._lock = threading.Lock()  # guards the idle connections
        # A Database dropped without dispose() (a Client never closed) still closes its idle
        # connections, instead of leaving each to warn "deleted while still open" when the
        # garbage collector gets to it, in whatever code runs then.
        weakref.finalize(self, _close_all, self._idle)
        self._open_lock = threading.Lock()  # one thread creates or upgrades the schema
        self._ready = False
        self._immutable = False
        self._ro = False  # opened read-only: the file or its folder is not writable
        self._full = False  # opened read-only because the disk is full

    # -- identity -------------------------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self._target) if self.is_sqlite else None

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for messages."""
        return _mask(self.url)

    @property
    def where(self) -> str:
        return str(self.sqlite_path) if self.is_sqlite else self.safe_url

    # -- connections ----------------------------------------------------------------------

    def connect(self) -> None:
        """Open the database and bring its schema to the head revision (once)."""
        if self._ready:
            return
        with self._open_lock:
            if self._ready:
                return
            if self.is_sqlite:
                self._check_sqlite_location()
                if not self.readonly:
                    self._keep_reserve()
            try:
                self._ensure_schema()
            except StoreUnavailableError:
                if not self._read_full_disk():
                    raise
                self._ensure_schema()
            self._ready = True

    def _check_sqlite_location(self) -> None:
        path = self.sqlite_path
        assert path is not None
        if self.readonly:
            if not path.is_file():
                raise StoreNotFoundError(
                    f"No loopml store at {path}: nothing has run here yet. Run a pipeline "
                    "(`loopml run NAME`), create a project with `loopml init NAME`, or point "
                    "LOOPML_STORE_URI at an existing store."
                )
            self._ro = not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(
                f"Cannot create the store folder {path.parent}: {exc.strerror}. Pick a "
                "writable location with LOOPML_STORE_URI or [store] uri in loopml.toml."
            ) from exc
        kind = filesystem_type(path.parent)
        if kind in _NETWORK_FS and not os.environ.get("LOOPML_ALLOW_NETWORK_FS"):
            raise InvalidParameterError(
                f"The store {path} is on a network file system ({kind}); SQLite corrupts there "
                "under concurrent writers. Use a local disk or PostgreSQL "
                "(LOOPML_STORE_URI=postgresql://…), or set LOOPML_ALLOW_NETWORK_FS=1 "
                "if only one process will ever write."
            )

    # -- a full disk -----------------------------------------------------------------------

    def _reserve_path(self) -> Path:
        path = self.sqlite_path
        assert path is not None
        return path.with_name(path.name + ".reserve")

    def _keep_reserve(self) -> None:
        """Keep ``store.db.reserve``, space given back when the disk fills (RELIABILITY.md R10).

        A run whose disk filled up must still record how it ended (``failed``, with the
        ENOSPC error), not be left ``running`` and later marked ``crashed``. Random bytes,
        so that no file system stores it sparse or compressed.
        """
        reserve = self._reserve_path()
        if reserve.exists():
            return
        tmp = reserve.with_name(f"{reserve.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(os.urandom(RESERVE_BYTES))
            os.replace(tmp, reserve)
        except OSError:
            pass  # no room for it now; the next writer tries again
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def _release_reserve(self) -> bool:
        """Give the reserve back when the disk is (nearly) full; True if there was one."""
        if not self.is_sqlite or free_bytes(self.sqlite_path) >= RESERVE_BYTES:
            return False
        try:
            os.unlink(self._reserve_path())
        except OSError:
            return False
        return True

    def _read_full_disk(self) -> bool:
        """Switch a reader on a full disk to reading the database file as it is; True if done.

        On a full disk SQLite cannot create or grow the WAL index (``-shm``), so every
        ordinary open fails, reads included. When the WAL is empty the database file holds
        every commit and ``immutable=1`` reads it without the index; with a non-empty WAL
        that would miss commits, so the error stands.
        """
        path = self.sqlite_path
        if not self.readonly or path is None or self._immutable or free_bytes(path) != 0:
            return False
        wal = path.with_name(path.name + "-wal")
        try:
            if wal.stat().st_size > 0:
                return False
        except FileNotFoundError:
            pass
        with self._lock:
            idle = self._take_idle()
        for conn in idle:
            conn.close()
        self._ro = self._immutable = self._full = True
        return True

    def _new_connection(self) -> Any:
        if self.is_sqlite:
            return self._sqlite_connection()
        try:
            import psycopg
        except ImportError as exc:
            raise StoreUnavailableError(
                "A PostgreSQL store needs the psycopg driver: pip install 'loopml[postgres]'."
            ) from exc
        try:
            return psycopg.connect(self._target, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreUnavailableError(
                f"Cannot open the metadata store {self.safe_url}: {_first_line(exc)}. Check that "
                "the database server is running and the URI is right (LOOPML_STORE_URI)."
            ) from exc

    def _sqlite_connection(self) -> Any:
        path = self.sqlite_path
        assert path is not None
        if self._ro:
            mode = "immutable=1" if self._immutable else "mode=ro"
            target, uri = f"file:{quote(str(path))}?{mode}", True
        else:
            target, uri = str(path), False
        try:
            conn = sqlite3.connect(
                target,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # loopml issues BEGIN itself
                check_same_thread=False,
                uri=uri,
            )
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys=ON")
            if not self._ro:
                # WAL + NORMAL survives process crashes; blobs are fsynced before their rows.
                enable_wal(conn, BUSY_TIMEOUT_MS / 1000)
                conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        except sqlite3.Error as exc:
            raise self._translate(exc, "open") from exc

    def _get(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._new_connection()

    def _put(self, conn: Any, broken: bool) -> None:
        if not broken:
            with self._lock:
                if len(self._idle) < 8:
                    self._idle.append(conn)
                    return
        try:
            conn.close()
        except Exception:  # closing a broken connection may fail too; it is gone either way
            pass

    def _take_idle(self) -> list[Any]:
        """Empty the pool, under ``_lock`` (the list object stays: the finalizer holds it)."""
        taken = list(self._idle)
        self._idle.clear()
        return taken

    def dispose(self) -> None:
        """Close every idle connection (the next use reconnects)."""
        with self._lock:
            idle = self._take_idle()
            self._ready = False
        for conn in idle:
            try:
                conn.close()
            except Exception:  # already closed by the server
                pass

    # -- transactions ---------------------------------------------------------------------

    def read(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in a read transaction."""
        self.connect()
        return self._run(fn, write=False, attempts=8)

    def write(self, fn: Callable[[Tx], T], *, attempts: int = 8) -> T:
        """Run ``fn`` in a write transaction, retrying on lock, deadlock and serialization errors.

        ``fn`` must be safe to run again: it runs in a fresh transaction after a rollback.
        """
        self.connect()
        if self._full:
            raise StoreUnavailableError(
                f"The disk holding the metadata store {self.where} is full "
                f"({free_bytes(self.sqlite_path):,} bytes free): this store can be read but "
                "not changed. Free some disk space, then retry; stored data is intact."
            )
        if self._ro:
            raise StoreUnavailableError(
                f"The metadata store {self.where} is read-only (its file or folder is not "
                "writable): this store can be read but not changed. Make it writable, or copy "
                "it to a writable place."
            )
        try:
            return self._run(fn, write=True, attempts=attempts)
        except StoreUnavailableError:
            if not self._release_reserve():
                raise
            return self._run(fn, write=True, attempts=attempts)

    def _run(self, fn: Callable[[Tx], T], *, write: bool, attempts: int) -> T:
        delay = 0.01
        for attempt in range(attempts):
            started = time.monotonic()
            try:
                return self._once(fn, write)
            except _Retry as retry:
                if attempt == attempts - 1:
                    cause = retry.__cause__
                    raise StoreUnavailableError(
                        f"The metadata store {self.where} stayed busy after {attempts} attempts "
                        f"({_first_line(cause)}); another program holds it. Nothing was written "
                        "by this call; retry later."
                    ) from cause
                self.retries += 1
                self.longest_wait_s = max(self.longest_wait_s, time.monotonic() - started)
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    def _once(self, fn: Callable[[Tx], T], write: bool) -> T:
        conn = self._get()
        broken = False
        try:
            if self.is_sqlite:
                started = time.monotonic()
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                if write:
                    self._record_wait(time.monotonic() - started)
                cur = conn.cursor()
                try:
                    result = fn(Tx(cur, False))
                    if write:
                        crash_point("db-commit")
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                finally:
                    cur.close()
            with conn.transaction(), conn.cursor() as cur:
                result = fn(Tx(cur, True))
                if write:
                    crash_point("db-commit")
                return result
        except LoopmlError:
            raise
        except (sqlite3.Error, UnicodeEncodeError, OverflowError) as exc:
            broken = isinstance(exc, sqlite3.DatabaseError) and not isinstance(
                exc, sqlite3.OperationalError | sqlite3.IntegrityError
            )
            raise self._translate(exc, "write" if write else "read") from exc
        except Exception as exc:
            if self.is_sqlite:
                raise
            import psycopg

            if not isinstance(exc, psycopg.Error):
                raise
            broken = conn.closed or isinstance(exc, psycopg.OperationalError)
            raise self._translate(exc, "write" if write else "read") from exc
        finally:
            self._put(conn, broken)

    def _record_wait(self, seconds: float) -> None:
        """Time spent waiting for SQLite's write lock inside busy_timeout (for R01's report)."""
        if seconds > 0.005:
            self.busy_waits += 1
        self.longest_wait_s = max(self.longest_wait_s, seconds)

    # -- errors ---------------------------------------------------------------------------

    def _translate(self, exc: BaseException, action: str) -> Exception:
        """A driver error as the loopml error a user can act on (or ``_Retry``)."""
        if isinstance(exc, UnicodeEncodeError):
            bad = exc.object[exc.start : exc.end] if isinstance(exc.object, str) else "?"
            return InvalidParameterError(
                f"Text {bad!r} cannot be stored: it is not valid Unicode (a lone surrogate, as in "
                "file names that are not UTF-8). Pass str(path.encode('utf-8', "
                "'surrogateescape'), 'utf-8', 'backslashreplace') or fix the name."
            )
        if isinstance(exc, OverflowError):  # sqlite3 cannot bind an int beyond 64 bits
            return InvalidParameterError(
                f"The store refused a value: {exc}; integers are stored in 64 bits "
                "([-2**63, 2**63 - 1]), as on PostgreSQL."
            )
        if self.is_sqlite:
            return self._translate_sqlite(exc, action)
        return self._translate_pg(exc, action)

    def _translate_sqlite(self, exc: BaseException, action: str) -> Exception:
        text = str(exc).lower()
        where = self.where
        if "locked" in text or "busy" in text:
            retry = _Retry()
            retry.__cause__ = exc
            return retry
        if isinstance(exc, sqlite3.IntegrityError):
            if "check constraint" in text:
                return InvalidParameterError(f"The store refused a value: {_first_line(exc)}.")
            return ConflictError(f"A concurrent change won: {_first_line(exc)}.")
        if "readonly" in text or "read-only" in text:
            return StoreUnavailableError(
                f"The metadata store {where} is read-only ({_first_line(exc)}): loopml could not "
                f"{action}. Read commands (loopml runs, runs show) still work; to write, make the "
                "file and its folder writable by this user, or copy the store elsewhere."
            )
        if "disk is full" in text or "disk i/o error" in text:
            free = free_bytes(self.sqlite_path)
            if "disk is full" in text or free == 0:
                return StoreUnavailableError(
                    f"The disk holding the metadata store {where} is full ({free:,} bytes free): "
                    f"loopml could not {action}. Free some disk space, then retry; stored data is "
                    "intact."
                )
            return StoreUnavailableError(
                f"The metadata store {where} hit a disk I/O error while trying to {action} "
                f"({free:,} bytes free). Check the disk (dmesg); stored data was not changed by "
                "this call."
            )
        if "malformed" in text or "not a database" in text or "corrupt" in text:
            return StoreCorruptError(
                f"The metadata store {where} is damaged ({_first_line(exc)}). Restore it from a "
                "backup; `loopml fsck` lists what it can still read."
            )
        if "unable to open" in text:
            return StoreUnavailableError(
                f"Cannot open the metadata store {where}: {_first_line(exc)}. Check that the "
                "path is right and readable, or set LOOPML_STORE_URI."
            )
        return StoreUnavailableError(
            f"The metadata store {where} failed ({_first_line(exc)}); nothing was written by "
            "this call."
        )

    def _translate_pg(self, exc: BaseException, action: str) -> Exception:
        import psycopg
        from psycopg import errors as pg

        code = getattr(exc, "sqlstate", None)
        if code in _RETRYABLE_PG_CODES or isinstance(
            exc, psycopg.OperationalError | psycopg.InterfaceError
        ):
            # A dropped connection is retried on a fresh one; a server that stays down
            # becomes StoreUnavailableError when the attempts run out.
            retry = _Retry()
            retry.__cause__ = exc
            return retry
        if isinstance(exc, pg.UniqueViolation | pg.ForeignKeyViolation):
            return ConflictError(f"A concurrent change won: {_first_line(exc)}.")
        if isinstance(exc, pg.CheckViolation | psycopg.DataError):
            return InvalidParameterError(
                f"The store refused a value: {_first_line(exc)}. loopml checks names and values "
                "before writing; please report this with the value that caused it."
            )
        if isinstance(exc, pg.InsufficientPrivilege | pg.ReadOnlySqlTransaction):
            return StoreUnavailableError(
                f"The metadata store {self.safe_url} refused to {action}: {_first_line(exc)}. "
                "Grant this database user write access, or use a read-only command."
            )
        if isinstance(exc, pg.DiskFull):
            return StoreUnavailableError(
                f"The database server of {self.safe_url} is out of disk space: loopml could not "
                f"{action}. Free space on the server, then retry."
            )
        return StoreUnavailableError(
            f"The metadata store {self.safe_url} failed ({_first_line(exc)}); nothing was "
            "written by this call."
        )

    # -- schema ---------------------------------------------------------------------------

    def _revision(self) -> str | None:
        """The schema revision, or None for an empty database; no retries, no schema needed."""
        conn = self._get()
        broken = False
        try:
            try:
                cur = conn.cursor()
                try:
                    cur.execute("SELECT version_num FROM alembic_version")
                    row = cur.fetchone()
                finally:
                    cur.close()
                return str(row[0]) if row else None
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if "no such table" in text:
                    return None
                if self.readonly and not self._immutable and _cannot_open_for_reading(exc):
                    # A WAL store on a read-only disk: its -shm file cannot be created.
                    broken, self._ro, self._immutable = True, True, True
                    return self._revision_retry()
                broken = True
                raise self._translate(exc, "open") from exc
            except sqlite3.DatabaseError as exc:
                broken = True
                raise self._translate(exc, "open") from exc
            except Exception as exc:
                if self.is_sqlite:
                    raise
                from psycopg import errors as pg

                if isinstance(exc, pg.UndefinedTable):
                    return None
                broken = True
                raise self._translate_open(exc) from exc
        finally:
            self._put(conn, broken)

    def _revision_retry(self) -> str | None:
        with self._lock:
            idle = self._take_idle()
        for conn in idle:
            conn.close()
        return self._revision()

    def _translate_open(self, exc: BaseException) -> Exception:
        error = self._translate(exc, "open")
        if isinstance(error, _Retry):
            return StoreUnavailableError(
                f"Cannot open the metadata store {self.safe_url}: {_first_line(exc)}."
            )
        return error

    def _ensure_schema(self) -> None:
        current = self._revision()
        if current == HEAD_REVISION:
            return
        if current is None and self.readonly:
            raise StoreNotFoundError(
                f"No loopml store at {self.where}: the database has no loopml tables. Run a "
                "pipeline there first, or point LOOPML_STORE_URI at an existing store."
            )
        if self.readonly or self._immutable:
            raise StoreUnavailableError(
                f"The metadata store {self.where} is at schema revision {current!r}; this loopml "
                f"reads {HEAD_REVISION}. Run any writing command (e.g. `loopml runs tag`) once "
                "with write access to upgrade it."
            )
        self.migrate()

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` under the migration lock (idempotent)."""
        if self.is_sqlite:
            from filelock import FileLock

            path = self.sqlite_path
            assert path is not None
            path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(f"{path}.migrate.lock", timeout=120):
                self._upgrade(revision)
            return
        conn = self._new_connection()
        try:
            conn.execute(f"SELECT pg_advisory_lock({_MIGRATION_LOCK_ID})")
            try:
                self._upgrade(revision)
            finally:
                conn.execute(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK_ID})")
        finally:
            conn.close()

    def sqlalchemy_url(self) -> str:
        """The same database as an SQLAlchemy URL (for Alembic and schema tests)."""
        if self.is_sqlite:
            return f"sqlite:///{self._target}"
        return "postgresql+psycopg://" + self._target.partition("://")[2]

    def _upgrade(self, revision: str) -> None:
        import sqlalchemy as sa
        from alembic import command
        from alembic.config import Config
        from alembic.util import CommandError

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        engine = sa.create_engine(self.sqlalchemy_url(), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                if self.is_sqlite:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                row = None
                if sa.inspect(conn).has_table("alembic_version"):
                    row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
                current = str(row[0]) if row else None
                if current == (HEAD_REVISION if revision == "head" else revision):
                    return
                config.attributes["connection"] = conn
                try:
                    command.upgrade(config, revision)
                except CommandError as exc:
                    raise StoreUnavailableError(
                        f"The metadata store {self.where} is at schema revision {current!r}, "
                        f"which this loopml (schema {HEAD_REVISION}) does not know: a newer "
                        "loopml wrote it. Upgrade loopml (pip install -U loopml) to use it."
                    ) from exc
                conn.commit()
        except sa.exc.DBAPIError as exc:
            raise self._translate_open(exc.orig or exc) from exc
        finally:
            engine.dispose()


def _cannot_open_for_reading(exc: BaseException) -> bool:
    """SQLite's words for a WAL store whose -shm file cannot be created on a read-only disk
    ("unable to open", or "attempt to write a readonly database" when no -wal exists)."""
    text = str(exc).lower()
    return any(needle in text for needle in ("unable to open", "readonly", "read-only"))


def _close_all(conns: list[Any]) -> None:
    for conn in conns:
        try:
            conn.close()
        except Exception:  # already closed, or the server is gone: nothing left to free
            pass
    conns.clear()
