"""Shared fixtures: an isolated project per test, and the store backends (SQLite, PostgreSQL).

``store_url`` is parametrized over both backends: every test that uses it (or ``client``)
runs against SQLite and against a real PostgreSQL server started by the tests.

``s3`` is a real S3-compatible server (moto's server mode, a separate process on
127.0.0.1), one per test session and xdist worker; ``s3_bucket`` gives each test its own
empty bucket on it, deleted afterwards.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "resources"))

from postgres_server import PostgresServer, start_postgres  # noqa: E402
from s3_server import S3Bucket, S3Server, start_s3  # noqa: E402


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in its own empty project folder with a fast heartbeat."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "loopml.toml").write_text('[project]\nname = "t"\n')
    for var in ("LOOPML_STORE_URI", "LOOPML_ARTIFACTS_URI", "LOOPML_REMOTE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LOOPML_HEARTBEAT_SECONDS", "0.5")
    monkeypatch.chdir(root)
    from loopml.tracking import client as client_module

    client_module._clients.clear()
    return root


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_s3(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3: S3Server) -> Iterator[S3Bucket]:
    """A fresh, empty bucket ``s3://b-<uuid>`` and the fsspec options to reach it."""
    name = f"b-{uuid.uuid4().hex}"
    yield S3Bucket(uri=s3.create_bucket(name), storage_options=s3.storage_options())
    # Objects live in the server's memory for the whole session: free them per test.
    s3.delete_bucket(name)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, project: Path) -> str:
    """An empty metadata store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{project / '.loopml' / 'store.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def client(store_url: str, project: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A loopml Client on each backend; also the default client of module-level functions."""
    monkeypatch.setenv("LOOPML_STORE_URI", store_url)
    from loopml.tracking.client import default_client

    c = default_client().open()
    yield c
    c.close()
