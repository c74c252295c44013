"""Tests for the throwaway PostgreSQL server used by the test suite (tests/postgres_server.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import postgres_server as pgs  # noqa: E402
from postgres_server import PostgresServer, start_postgres  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    srv = start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield srv
    finally:
        srv.stop()


def _scalar(url: str, query: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar()
    finally:
        engine.dispose()


def _port_is_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_url_and_query(server: PostgresServer) -> None:
    assert server.url == f"postgresql+psycopg://loopml@127.0.0.1:{server.port}/postgres"
    engine = sa.create_engine(server.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1 + 1")).scalar() == 2
            assert conn.execute(sa.text("SELECT current_user")).scalar() == "loopml"
            assert conn.execute(sa.text("SHOW server_encoding")).scalar() == "UTF8"
            # durability is off: this server is for tests only
            assert conn.execute(sa.text("SHOW fsync")).scalar() == "off"
            assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "off"
            assert conn.execute(sa.text("SHOW full_page_writes")).scalar() == "off"
            assert conn.execute(sa.text("SHOW listen_addresses")).scalar() == "127.0.0.1"
    finally:
        engine.dispose()


def test_databases_are_isolated(server: PostgresServer) -> None:
    url_a = server.create_database("iso_a")
    url_b = server.create_database("iso_b")
    assert url_a.endswith(f":{server.port}/iso_a")
    assert url_b.endswith(f":{server.port}/iso_b")

    eng_a, eng_b = sa.create_engine(url_a), sa.create_engine(url_b)
    try:
        with eng_a.begin() as conn:
            conn.execute(sa.text("CREATE TABLE runs (id int PRIMARY KEY, name text)"))
            conn.execute(sa.text("INSERT INTO runs VALUES (1, 'alpha'), (2, 'beta')"))
        with eng_b.begin() as conn:
            conn.execute(sa.text("CREATE TABLE runs (id int PRIMARY KEY, name text)"))
            conn.execute(sa.text("INSERT INTO runs VALUES (7, 'gamma')"))
        with eng_a.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "iso_a"
            assert conn.execute(sa.text("SELECT name FROM runs ORDER BY id")).scalars().all() == [
                "alpha",
                "beta",
            ]
        with eng_b.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "iso_b"
            assert conn.execute(sa.text("SELECT name FROM runs")).scalars().all() == ["gamma"]
        assert sa.inspect(eng_b).get_table_names() == ["runs"]
    finally:
        eng_a.dispose()
        eng_b.dispose()

    # a new database starts empty, whatever the others hold
    fresh = server.create_database("iso_fresh")
    engine = sa.create_engine(fresh)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_create_database_rejects_duplicates_and_bad_names(server: PostgresServer) -> None:
    server.create_database("dup")
    with pytest.raises(Exception, match="already exists"):
        server.create_database("dup")
    for bad in ["", "1abc", "a b", 'x"; DROP DATABASE postgres; --', "a" * 64]:
        with pytest.raises(ValueError):
            server.create_database(bad)


def test_stop_releases_port_and_removes_data(tmp_path: Path) -> None:
    srv = start_postgres(tmp_path)
    port, data_dir = srv.port, srv.data_dir
    assert (data_dir / "PG_VERSION").is_file()
    if os.geteuid() == 0:
        # root runs the server as the postgres user, in a dir that user can reach
        import pwd

        assert data_dir.stat().st_uid == pwd.getpwnam("postgres").pw_uid
    url = srv.create_database("before_stop")
    assert _scalar(url, "SELECT 42") == 42
    assert _port_is_listening(port)

    srv.stop()

    assert not _port_is_listening(port)
    assert not data_dir.exists()
    # the port can be bound again (as postgres itself binds it: with SO_REUSEADDR)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
    srv.stop()  # idempotent
    with pytest.raises(RuntimeError, match="stopped"):
        srv.create_database("after_stop")


def test_two_servers_side_by_side(tmp_path: Path) -> None:
    one = start_postgres(tmp_path / "one")
    try:
        two = start_postgres(tmp_path / "two")
        try:
            assert one.port != two.port
            assert _scalar(one.url, "SELECT 1") == 1
            assert _scalar(two.url, "SELECT 2") == 2
        finally:
            two.stop()
        assert _scalar(one.url, "SELECT 3") == 3  # stopping one leaves the other alone
    finally:
        one.stop()


def test_missing_binaries_say_run_make_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pgs.BINDIR_ENV, str(tmp_path))
    with pytest.raises(RuntimeError, match="make test"):
        start_postgres(tmp_path)

    monkeypatch.delenv(pgs.BINDIR_ENV)
    monkeypatch.setattr(pgs, "DEBIAN_PG_ROOT", tmp_path / "nowhere")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    with pytest.raises(RuntimeError, match="make test"):
        pgs.find_pg_bindir()
    # nothing created when failing early (the autouse fixture made "project")
    assert [p for p in tmp_path.iterdir() if p.name != "project"] == []


def test_bindir_prefers_newest_debian_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ["9.6", "15", "16", "13"]:
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        for exe in ("initdb", "pg_ctl", "postgres"):
            (bindir / exe).write_text("#!/bin/sh\n")
            (bindir / exe).chmod(0o755)
    monkeypatch.delenv(pgs.BINDIR_ENV, raising=False)
    monkeypatch.setattr(pgs, "DEBIAN_PG_ROOT", tmp_path)
    assert pgs.find_pg_bindir() == tmp_path / "16" / "bin"


def test_extra_settings(tmp_path: Path) -> None:
    srv = start_postgres(tmp_path, settings={"work_mem": "8MB", "application_name": "a b"})
    try:
        assert _scalar(srv.url, "SHOW work_mem") == "8MB"
        assert _scalar(srv.url, "SHOW fsync") == "off"
    finally:
        srv.stop()


def test_start_failure_shows_server_log_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        path = real_mkdtemp(*args, **kwargs)
        created.append(Path(path))
        return path

    monkeypatch.setattr(pgs.tempfile, "mkdtemp", recording_mkdtemp)
    with pytest.raises(RuntimeError, match="server log") as info:
        start_postgres(tmp_path, settings={"no_such_setting_xyz": "1"})
    assert "no_such_setting_xyz" in str(info.value)  # the log tail names the culprit
    assert created
    assert not [p for p in created if p.exists()]


def test_retries_when_the_probed_port_gets_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process (e.g. a parallel pytest-xdist worker) binds the port first.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = pgs._free_port
        ports = iter([taken])
        monkeypatch.setattr(pgs, "_free_port", lambda: next(ports, None) or real_free_port())
        srv = start_postgres(tmp_path)
        try:
            assert srv.port != taken
            assert _scalar(srv.url, "SELECT 1") == 1
        finally:
            srv.stop()


def test_orphans_of_dead_processes_are_reaped(tmp_path: Path) -> None:
    # A process that starts a server and dies without stop() (killed pytest, os._exit, CI
    # timeout) leaves a postmaster behind; the next start_postgres() stops and deletes it.
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
        "import postgres_server as p; s = p.start_postgres(Path(sys.argv[2])); "
        "print(s.port, s.data_dir, flush=True); os._exit(0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path / "orphan")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    port, data_dir = int(out[0]), Path(out[1])
    assert _port_is_listening(port)

    srv = start_postgres(tmp_path / "next")
    try:
        assert not _port_is_listening(port)
        assert not data_dir.exists()
    finally:
        srv.stop()


def test_stop_after_the_server_died_is_quiet(tmp_path: Path) -> None:
    srv = start_postgres(tmp_path)
    pid = int((srv.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _port_is_listening(srv.port) and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.stop()  # stale postmaster.pid: no error, files still removed
    assert not srv.data_dir.exists()
