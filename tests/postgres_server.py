"""A throwaway PostgreSQL server for tests.

``start_postgres(base_dir)`` runs ``initdb`` into a fresh data directory, starts the
server on a free loopback port with durability switched off (fsync, synchronous_commit
and full_page_writes are all off: this is for tests, never for real data) and returns a
:class:`PostgresServer`. ``create_database(name)`` gives each test its own database;
``stop()`` kills the server (``pg_ctl -m immediate stop``) and deletes its files.

Binaries are looked up in this order: ``$LOOPML_PG_BINDIR``, the newest
``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu), ``pg_config --bindir``, ``initdb`` on
``PATH``. When none exists a ``RuntimeError`` tells you to run ``make test``, which installs
them (``scripts/install-system-deps.sh``); tests never skip for a missing PostgreSQL.

``initdb`` and ``pg_ctl`` refuse to run as root, so as root they run as the ``postgres``
user that Debian's package creates, which then owns the server's files. Those live in a
fresh ``base_dir/pg-*`` directory when that user can reach ``base_dir``; otherwise (e.g.
pytest's root-only 0700 tmp dirs, or a path too long for the unix socket) in a fresh
``/tmp/loopml-pg-*`` directory (mode 0755). Not root: they run as the current user.

Servers whose Python process died without ``stop()`` (killed pytest, ``os._exit``, CI
timeout) are found through ``/tmp/loopml-pg-registry-<uid>/`` and stopped and deleted by
the next ``start_postgres()``; normal exits are covered by an ``atexit`` hook.

This module deliberately does not import pytest.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresServer", "find_pg_bindir", "start_postgres"]

PG_USER = "loopml"  # superuser created by initdb; all URLs connect as this role
SERVICE_USER = "postgres"  # OS user that runs the server when we are root
BINDIR_ENV = "LOOPML_PG_BINDIR"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60.0
_PORT_ATTEMPTS = 5
# Durability off: these servers hold test data only and are deleted on stop().
_SERVER_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
}
_LOG_HEADER = "\n--- tail of the server log (deleted with the data dir) ---\n"
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")

_INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. "
    "Run `make test`, which installs them (scripts/install-system-deps.sh installs "
    "Debian's `postgresql` package), or set LOOPML_PG_BINDIR to a directory holding initdb."
)


# --------------------------------------------------------------------------- binaries


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin  ->  numeric sort key ("9.6" < "15" < "16")
    parts = re.findall(r"\d+", path.parent.name)
    return tuple(int(p) for p in parts) if parts else (-1,)


def find_pg_bindir() -> Path:
    """Directory holding initdb/pg_ctl/postgres, or RuntimeError saying to run `make test`."""

    def complete(bindir: Path) -> bool:
        return all(os.access(bindir / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres"))

    override = os.environ.get(BINDIR_ENV)
    if override:
        if complete(Path(override)):
            return Path(override)
        raise RuntimeError(
            f"{BINDIR_ENV}={override!r} holds no initdb/pg_ctl/postgres. {_INSTALL_HINT}"
        )
    candidates: list[Path] = []
    debian = [p for p in DEBIAN_PG_ROOT.glob("*/bin") if (p / "initdb").is_file()]
    candidates.extend(sorted(debian, key=_version_key, reverse=True))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if complete(bindir):
            return bindir
    raise RuntimeError(_INSTALL_HINT)


# --------------------------------------------------------------------------- helpers


def _postmaster_alive(data_dir: Path) -> bool:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False  # no pid file, stale pid, or unreadable
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env() -> dict[str, str]:
    # PG* variables (PGDATA, PGPORT, PGOPTIONS, ...) from the caller's shell must not leak
    # into initdb/pg_ctl or the server; a fixed locale keeps initdb's output predictable.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    env.pop("LANGUAGE", None)
    return env


def _traversable_by(path: Path, uid: int, gids: set[int]) -> bool:
    """True if user uid (in groups gids) may traverse path and all its parents."""
    try:
        for p in [path, *path.parents]:
            st = p.stat()
            if st.st_uid == uid:
                bit = stat.S_IXUSR
            elif st.st_gid in gids:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not st.st_mode & bit:
                return False
    except OSError:
        return False
    return True


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no server log at {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:]) or "<server log is empty>"


@dataclass
class _RunAs:
    """Who runs the server binaries: ourselves, or (as root) the postgres user."""

    uid: int | None = None  # None: current user
    gid: int | None = None

    @classmethod
    def detect(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls()
        try:
            pw = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise RuntimeError(
                f"Running as root, but there is no {SERVICE_USER!r} user to run PostgreSQL as "
                "(initdb/pg_ctl refuse to run as root). Debian's `postgresql` package creates "
                f"it: run `make test`. {_INSTALL_HINT}"
            ) from None
        return cls(uid=pw.pw_uid, gid=pw.pw_gid)

    def run(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path,
        timeout: float,
        new_session: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        # As root: the same effect as `runuser -u postgres --`, without PAM or an extra process.
        dropping = self.uid is not None
        return subprocess.run(
            [os.fspath(c) for c in cmd],
            cwd=cwd,  # never a cwd the postgres user cannot enter (e.g. /root)
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=new_session,  # Ctrl-C in pytest must not hit the postmaster
            check=False,
            user=self.uid,
            group=self.gid,
            extra_groups=[] if dropping else None,
        )

    def chown(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, self.gid if self.gid is not None else -1)


def _make_run_dir(base_dir: Path, run_as: _RunAs) -> Path:
    """A fresh directory for data dir, socket dir and log, writable by the server's user."""
    parent: Path | None = None
    if run_as.uid is None:
        base_dir.mkdir(parents=True, exist_ok=True)
        parent = base_dir
    else:
        gids = {run_as.gid} if run_as.gid is not None else set()
        with contextlib.suppress(OSError):
            base_dir.mkdir(parents=True, exist_ok=True)
        if _traversable_by(base_dir, run_as.uid, gids):
            parent = base_dir
    if parent is not None:
        run_dir = Path(tempfile.mkdtemp(prefix="pg-", dir=parent))
        # The unix socket path (<run_dir>/sock/.s.PGSQL.NNNNN) must stay under ~100 bytes.
        if len(os.fsencode(run_dir)) <= 70:
            return run_dir
        run_dir.rmdir()
    # Short, world-traversable directory in /tmp (e.g. pytest's root-only 0700 tmp dirs).
    run_dir = Path(tempfile.mkdtemp(prefix="loopml-pg-"))
    run_dir.chmod(0o755)
    return run_dir


def _proc_start_time(pid: int) -> str:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat_line.rsplit(")", 1)[-1].split()[19]  # field 22: start time in clock ticks


def _owner_alive(owner: str) -> bool:
    pid_s, _, started = owner.strip().partition(" ")
    try:
        pid = int(pid_s)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True  # unreadable or someone else's: leave it alone
    return not started or _proc_start_time(pid) in ("", started)


def _registry_dir() -> Path | None:
    """Per-user directory of links to every live run dir (so orphans can be found)."""
    reg = Path(tempfile.gettempdir()) / f"loopml-pg-registry-{os.geteuid()}"
    try:
        reg.mkdir(mode=0o700, exist_ok=True)
        st = reg.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        return None  # not ours: do not trust it
    return reg


def _register(run_dir: Path) -> Path | None:
    reg = _registry_dir()
    if reg is None:
        return None
    link = reg / uuid.uuid4().hex
    try:
        link.symlink_to(run_dir.resolve())
    except OSError:
        return None
    return link


def _reap_orphans(bindir: Path, run_as: _RunAs) -> None:
    """Stop and delete servers whose Python process died without calling stop().

    A killed pytest, os._exit() or a CI timeout skips atexit; its postmaster would
    otherwise run on (and keep its files) until reboot.
    """
    reg = _registry_dir()
    if reg is None:
        return
    for link in reg.iterdir():
        try:
            run_dir = Path(os.readlink(link))
        except OSError:
            continue
        try:
            owner = (run_dir / "owner").read_text()
        except OSError:
            if not run_dir.exists():
                link.unlink(missing_ok=True)  # run dir already gone
            continue
        if _owner_alive(owner):
            continue
        data_dir = run_dir / "data"
        if (data_dir / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                run_as.run(
                    [bindir / "pg_ctl", "-D", data_dir, "-m", "immediate", "-w", "stop"],
                    cwd=Path(tempfile.gettempdir()),
                    timeout=60,
                )
        shutil.rmtree(run_dir, ignore_errors=True)
        link.unlink(missing_ok=True)


def _connect_admin(
    port: int, dbname: str = "postgres", timeout: float = 5.0
) -> psycopg.Connection[Any]:
    import psycopg  # imported lazily: the module must import without the postgres extra

    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        user=PG_USER,
        dbname=dbname,
        autocommit=True,
        connect_timeout=max(1, int(timeout)),
    )


# --------------------------------------------------------------------------- server


@dataclass
class PostgresServer:
    """A running throwaway server. ``url`` points at its default ``postgres`` database."""

    url: str
    port: int = 0
    host: str = "127.0.0.1"
    user: str = PG_USER
    data_dir: Path = field(default_factory=Path)
    log_file: Path = field(default_factory=Path)
    bindir: Path = field(default_factory=Path)
    major_version: int = 0
    _run_dir: Path = field(default_factory=Path, repr=False)
    _run_as: _RunAs = field(default_factory=_RunAs, repr=False)
    _registry_link: Path | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def url_for(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create a fresh, empty database and return its SQLAlchemy URL.

        ``name`` must be a plain identifier (letters, digits, ``_``, ``$``, ``-``; at most 63
        bytes) and must not exist yet: an existing name raises, so two tests never share one.
        """
        if self._stopped:
            raise RuntimeError("PostgresServer is stopped")
        if not _IDENT_RE.match(name):
            raise ValueError(
                f"invalid database name {name!r}: use [A-Za-z_][A-Za-z0-9_$-]*, <= 63 chars"
            )
        from psycopg import sql

        with _connect_admin(self.port) as conn:
            # template0 + FILE_COPY is the fastest way to an empty DB (fsync is off anyway).
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 STRATEGY FILE_COPY").format(
                    sql.Identifier(name)
                )
                if self.major_version >= 15
                else sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        return self.url_for(name)

    def stop(self) -> None:
        """Kill the server (immediate mode) and delete its data directory. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        _live.pop(id(self), None)
        try:
            if (self.data_dir / "postmaster.pid").exists():
                res = self._run_as.run(
                    [
                        self.bindir / "pg_ctl",
                        "-D",
                        self.data_dir,
                        "-m",
                        "immediate",
                        "-w",
                        "-t",
                        "30",
                        "stop",
                    ],
                    cwd=self._run_dir,
                    timeout=60,
                )
                if res.returncode != 0 and _postmaster_alive(self.data_dir):
                    raise RuntimeError(
                        f"pg_ctl stop failed (exit {res.returncode}): {res.stdout}{res.stderr}"
                    )
        finally:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            if self._registry_link is not None:
                self._registry_link.unlink(missing_ok=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_live: dict[int, PostgresServer] = {}  # servers of this process not stopped yet


@atexit.register
def _stop_leftovers() -> None:
    # A test session that forgot stop() (or crashed) must not leave postmasters behind.
    for server in list(_live.values()):
        with contextlib.suppress(Exception):
            server.stop()


def _server_major(bindir: Path) -> int:
    try:
        out = subprocess.run(
            [os.fspath(bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else 0


def _wait_until_accepting(port: int, deadline: float) -> None:
    import psycopg

    last: Exception | None = None
    while True:
        try:
            with _connect_admin(port, timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"server did not accept connections: {last}")
        time.sleep(0.05)


def start_postgres(base_dir: Path, *, settings: Mapping[str, str] | None = None) -> PostgresServer:
    """initdb + start a throwaway server on a free 127.0.0.1 port; see the module docstring.

    ``settings`` adds server settings (``-c name=value``), e.g. ``{"log_statement": "all"}``;
    they override the test defaults (fsync/synchronous_commit/full_page_writes off, ...).
    """
    all_settings = {**_SERVER_SETTINGS, **(settings or {})}
    bindir = find_pg_bindir()
    major = _server_major(bindir)
    run_as = _RunAs.detect()
    _reap_orphans(bindir, run_as)
    run_dir = _make_run_dir(Path(base_dir), run_as)
    data_dir = run_dir / "data"
    sock_dir = run_dir / "sock"
    log_file = run_dir / "server.log"
    reg_link: Path | None = None
    try:
        (run_dir / "owner").write_text(f"{os.getpid()} {_proc_start_time(os.getpid())}\n")
        reg_link = _register(run_dir)
        run_as.chown(run_dir)
        sock_dir.mkdir(mode=0o700)
        run_as.chown(sock_dir)

        res = run_as.run(
            [
                bindir / "initdb",
                "-D",
                data_dir,
                "-A",
                "trust",
                "-U",
                PG_USER,
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            cwd=run_dir,
            timeout=120,
        )
        if res.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {res.returncode}) in {data_dir}:\n{res.stdout}\n{res.stderr}"
            )

        last_error = ""
        for _attempt in range(_PORT_ATTEMPTS):
            port = _free_port()
            # pg_ctl hands -o to /bin/sh, hence the quoting.
            opts = " ".join(
                [f"-h 127.0.0.1 -p {port} -k {shlex.quote(str(sock_dir))} -F"]
                + [f"-c {shlex.quote(f'{k}={v}')}" for k, v in all_settings.items()]
            )
            log_file.unlink(missing_ok=True)  # judge each attempt by its own log
            deadline = time.monotonic() + START_TIMEOUT_S
            res = run_as.run(
                [
                    bindir / "pg_ctl",
                    "-D",
                    data_dir,
                    "-l",
                    log_file,
                    "-w",
                    "-t",
                    str(int(START_TIMEOUT_S)),
                    "-o",
                    opts,
                    "start",
                ],
                cwd=run_dir,
                timeout=START_TIMEOUT_S + 30,
                new_session=True,
            )
            log_tail = _tail(log_file)
            if res.returncode != 0:
                last_error = (
                    f"pg_ctl start failed (exit {res.returncode}) on port {port}:\n"
                    f"{res.stdout}{res.stderr}{_LOG_HEADER}{log_tail}"
                )
                if (data_dir / "postmaster.pid").exists():
                    run_as.run(
                        [bindir / "pg_ctl", "-D", data_dir, "-m", "immediate", "stop"],
                        cwd=run_dir,
                        timeout=60,
                    )
                if "could not bind" in log_tail or "already in use" in log_tail:
                    continue  # another process grabbed the port between probe and bind
                raise RuntimeError(last_error)
            server = PostgresServer(
                url=f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/postgres",
                port=port,
                data_dir=data_dir,
                log_file=log_file,
                bindir=bindir,
                major_version=major,
                _run_dir=run_dir,
                _run_as=run_as,
                _registry_link=reg_link,
            )
            _live[id(server)] = server
            try:
                _wait_until_accepting(port, deadline)
            except Exception as exc:
                msg = f"PostgreSQL started but {exc}{_LOG_HEADER}{_tail(log_file)}"
                server.stop()
                raise RuntimeError(msg) from None
            return server
        raise RuntimeError(
            f"could not find a free port after {_PORT_ATTEMPTS} tries:\n{last_error}"
        )
    except BaseException:
        # Nothing may be left behind: no postmaster, no files (stop() also removes run_dir).
        if (data_dir / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                run_as.run(
                    [bindir / "pg_ctl", "-D", data_dir, "-m", "immediate", "stop"],
                    cwd=run_dir,
                    timeout=60,
                )
        shutil.rmtree(run_dir, ignore_errors=True)
        if reg_link is not None:
            reg_link.unlink(missing_ok=True)
        raise
