"""Errors never leak raw (issue 12 §1): the same limits on both backends, clear messages, no
foreign exception types.

Before the fix a 300-character pipeline name raised ``sqlalchemy.exc.DataError`` on
PostgreSQL and was stored on SQLite; ``postgres://…``, ``mysql://…`` and malformed URIs
gave "Internal error: this is a bug", as did ``LOOPML_HEARTBEAT_SECONDS=abc``. Now every
name is checked at the edge against one limit per kind, on every backend, and the message
names the thing and the limit; store URIs and settings are checked before anything opens;
and whatever goes wrong underneath (missing, locked or read-only database, a server that
goes away, a value the database refuses) reaches the caller as a ``LoopmlError``.

The CLI side of the same errors (``Error:`` and exit 1) is in ``tests/cli/test_cli_edges.py``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from loopml import Client, pipeline, step
from loopml.config import load_settings
from loopml.errors import (
    InvalidParameterError,
    LoopmlError,
    StorageError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from loopml.store import MetadataStore
from net_proxy import CuttingProxy, Direction

LONG = 300

# --- one limit per kind, on both backends ------------------------------------------------


def _step_named(name: str) -> Any:
    @step(name=name)
    def work(x: int) -> int:
        return x + 1

    return work


LIMITS: list[Any] = [
    pytest.param(
        lambda c, n: c.start_run(n).end(), "Pipeline name", 200, id="ad-hoc pipeline name"
    ),
    pytest.param(
        lambda c, n: pipeline(name=n)(lambda x=1: _step_named("s")(x)).run(client=c),
        "Pipeline name",
        200,
        id="pipeline name",
    ),
    pytest.param(
        lambda c, n: pipeline(name="p")(lambda x=1: _step_named(n)(x)).run(client=c),
        "Step name",
        200,
        id="step name",
    ),
    pytest.param(lambda c, n: c.rename_run(_finished(c), n), "Run name", 200, id="run name"),
    pytest.param(
        lambda c, n: _log(c, lambda r: r.log_metric(n, 1.0)), "Metric name", 250, id="metric"
    ),
    pytest.param(lambda c, n: _log(c, lambda r: r.log_param(n, 1)), "Param name", 250, id="param"),
    pytest.param(lambda c, n: _log(c, lambda r: r.set_tag(n, "x")), "Tag name", 250, id="tag"),
    pytest.param(
        lambda c, n: c.tag_run(_finished(c), {n: "x"}), "Tag name", 250, id="tag a finished run"
    ),
]


def _finished(client: Client) -> str:
    with client.start_run("finished") as run:
        pass
    return run.id


def _log(client: Client, call: Callable[[Any], None]) -> None:
    with client.start_run("logging") as run:
        call(run)


@pytest.mark.parametrize(("call", "kind", "limit"), LIMITS)
def test_a_name_is_held_to_one_limit_on_every_backend(
    client: Client, call: Callable[[Client, str], None], kind: str, limit: int
) -> None:
    too_long = "n" * LONG
    with pytest.raises(InvalidParameterError) as caught:
        call(client, too_long)
    message = str(caught.value)
    assert kind in message, message
    assert f"at most {limit} characters" in message and f"{LONG:,} characters" in message, message
    assert "sqlalchemy" not in message.lower() and "psycopg" not in message.lower()
    assert type(caught.value).__module__ == "loopml.errors"

    # At the limit the name is stored whole, on SQLite and PostgreSQL alike.
    longest = "n" * limit
    call(client, longest)
    runs = client.search_runs()
    stored = {
        n
        for r in runs
        for n in (r.pipeline, r.name, *r.metrics, *r.params, *r.tags)
        + tuple(s.name for s in client.steps(r.id))
    }
    assert longest in stored and too_long not in stored
    assert all(r.pipeline != too_long for r in runs)


# --- store URIs ----------------------------------------------------------------------------

FORMS = ("'sqlite:///PATH'", "'postgresql://USER@HOST/DB'")


@pytest.mark.parametrize(
    ("uri", "names"),
    [
        ("mysql://u:pw@h/db", "'mysql'"),
        ("http://x", "'http'"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///", "sqlite:///"),
        ("sqlite:///:memory:", ":memory:"),
        ("postgresql://u@h:notaport/db", "notaport"),
        ("postgresql://u@h:99999/db", "99999"),
        ("postgresql://u@h", "name the database"),
    ],
)
def test_an_unusable_store_uri_lists_the_supported_forms(uri: str, names: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        Client(store_uri=uri)
    message = str(caught.value)
    assert names in message, message
    for form in FORMS:
        assert form in message, message
    assert "pw" not in message  # a password is never echoed


def test_postgres_scheme_is_an_alias_of_postgresql(postgres: Any) -> None:
    """``postgres://`` (what many hosting services hand out) opens the same database."""
    url = postgres.create_database("t_alias")
    alias = "postgres://" + url.partition("://")[2]
    clients = [Client(store_uri=alias), Client(store_uri=url)]
    try:
        with clients[0].start_run("alias") as run:
            run.log_metric("m", 1.0)
        assert clients[1].run_record(run.id).metrics == {"m": 1.0}
    finally:
        for c in clients:
            c.close()


# --- settings from the environment ---------------------------------------------------------


@pytest.mark.parametrize("raw", ["abc", "-1", "0", "nan", "inf", "1e999", " "])
def test_a_bad_heartbeat_setting_names_the_variable_and_the_value(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_HEARTBEAT_SECONDS", raw)
    with pytest.raises(InvalidParameterError) as caught:
        load_settings()
    message = str(caught.value)
    assert "LOOPML_HEARTBEAT_SECONDS" in message and repr(raw) in message, message
    assert "> 0" in message, message


# --- no foreign exception escapes the public API --------------------------------------------


def _foreign(exc: BaseException) -> str | None:
    """The exception's type if it does not come from loopml (or the builtins it subclasses)."""
    module = type(exc).__module__
    return None if module.startswith("loopml") else f"{module}.{type(exc).__qualname__}"


def _raises_loopml(call: Callable[[], Any]) -> LoopmlError:
    try:
        call()
    except LoopmlError as exc:
        assert _foreign(exc) is None
        return exc
    except BaseException as exc:
        raise AssertionError(f"{_foreign(exc) or type(exc)} escaped: {exc}") from exc
    raise AssertionError("nothing was raised")


def test_a_missing_sqlite_store_is_a_loopml_error_for_readers(project: Path) -> None:
    client = Client(store_uri=str(project / "typo" / "store.db"), readonly=True)
    for call in (client.search_runs, lambda: client.run_record("abcd"), client.list_artifacts):
        assert isinstance(_raises_loopml(call), StoreNotFoundError)
    assert not (project / "typo").exists()  # reading never creates


def test_a_locked_sqlite_store_is_a_loopml_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project / ".loopml" / "store.db"
    client = Client(store_uri=str(path)).open()
    with client.start_run("before") as run:
        run.log_metric("m", 1.0)
    # The real busy timeout is 30 s per attempt; a short one keeps the test fast.
    monkeypatch.setattr("loopml.store.engine.BUSY_TIMEOUT_MS", 50)
    other = Client(store_uri=str(path))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        error = _raises_loopml(lambda: other.start_run("blocked"))
        assert isinstance(error, StoreUnavailableError)
        assert "busy" in str(error) and str(path) in str(error), error
        # Readers are not blocked by a writer (WAL): reading still works meanwhile.
        assert other.run_record(run.id).metrics == {"m": 1.0}
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with other.start_run("after"):
        pass


def test_a_damaged_sqlite_file_is_a_loopml_error(project: Path) -> None:
    path = project / ".loopml" / "store.db"
    writer = Client(store_uri=str(path))
    with writer.start_run("r"):
        pass
    writer.close()
    with sqlite3.connect(path) as con:  # everything into the main file, the WAL emptied
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(path.read_bytes())
    data[:16] = b"not a database!!"
    path.write_bytes(bytes(data))
    for readonly in (False, True):
        client = Client(store_uri=str(path), readonly=readonly)
        _raises_loopml(client.search_runs)


_READ_ONLY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from loopml import Client
    from loopml.errors import LoopmlError

    url = sys.argv[1]
    results = {}
    def attempt(name, call):
        try:
            value = call()
            results[name] = ["ok", repr(value)[:80]]
        except LoopmlError as exc:
            results[name] = ["loopml", type(exc).__name__, str(exc)]
        except BaseException as exc:
            results[name] = ["foreign", f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc)]

    writer = Client(store_uri=url)
    attempt("start_run", lambda: writer.start_run("denied"))
    attempt("tag_run", lambda: writer.tag_run(sys.argv[2], {"k": "v"}))
    reader = Client(store_uri=url, readonly=True)
    attempt("read", lambda: [r.id for r in reader.search_runs()])
    print(json.dumps(results))
    """
)


def test_a_read_only_sqlite_store_is_a_loopml_error_for_writers_and_readable(
    tmp_path: Path,
) -> None:
    """A store on a read-only disk, or an archived copy: writers get a loopml error, readers read.

    Root ignores file modes, so the check runs in a new user namespace (``unshare --user``),
    where this process has no privileges and the modes apply.
    """
    store = tmp_path / "store"
    path = store / "store.db"
    writer = Client(store_uri=str(path), artifacts_uri=str(tmp_path / "blobs"))
    with writer.start_run("r") as run:
        run.log_metric("m", 1.0)
    writer.close()
    for f in store.iterdir():
        f.chmod(0o444)
    store.chmod(0o555)
    try:
        result = subprocess.run(
            [
                "unshare",
                "--user",
                sys.executable,
                "-c",
                _READ_ONLY_SCRIPT,
                f"sqlite:///{path}",
                run.id,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "LOOPML_ARTIFACTS_URI": str(tmp_path / "blobs")},
        )
    finally:
        store.chmod(0o755)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["start_run"][:2] == ["loopml", "StoreUnavailableError"], found
    assert found["tag_run"][:2] == ["loopml", "StoreUnavailableError"], found
    assert "read-only" in found["start_run"][2], found
    assert found["read"] == ["ok", repr([run.id])], found


def test_a_postgres_server_that_goes_away_is_a_loopml_error(postgres: Any) -> None:
    url = postgres.create_database("t_goes_away")
    proxy = CuttingProxy(postgres.host, postgres.port).start()
    try:
        via = url.replace(f"{postgres.host}:{postgres.port}", f"127.0.0.1:{proxy.port}")
        client = Client(store_uri=via).open()
        with client.start_run("before") as run:
            run.log_metric("m", 1.0)
        proxy.cut_after(Direction.CLIENT_TO_SERVER, 0)
        started = time.monotonic()
        for call in (
            lambda: client.start_run("during"),
            client.search_runs,
            lambda: client.run_record(run.id),
            lambda: client.tag_run(run.id, {"k": "v"}),
        ):
            error = _raises_loopml(call)
            assert isinstance(error, StoreUnavailableError), error
            assert "127.0.0.1" in str(error), error
        assert time.monotonic() - started < 60
        proxy.pass_all()
        assert client.run_record(run.id).metrics == {"m": 1.0}  # reconnects once it is back
    finally:
        proxy.stop()


def test_a_postgres_store_that_was_never_there_is_a_loopml_error(postgres: Any) -> None:
    client = Client(store_uri=postgres.url_for("loopml_never_created"))
    for call in (client.open, lambda: client.start_run("x"), client.search_runs):
        assert isinstance(_raises_loopml(call), StoreUnavailableError)
    reader = Client(store_uri=postgres.url_for("loopml_never_created"), readonly=True)
    _raises_loopml(reader.search_runs)


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(
            lambda s, r, now: s.metrics.write_batch(r, [("k", 2**70, 1.0, now)]), id="step"
        ),
        pytest.param(
            lambda s, r, now: s.metrics.write_batch(r, [("bad\udcff", 0, 1.0, now)]), id="key"
        ),
        pytest.param(lambda s, r, now: s.metrics.write_batch(r, params={"k\x00": 1}), id="nul"),
        pytest.param(lambda s, r, now: s.runs.rename(r, "x" * 201), id="run-name"),
        pytest.param(lambda s, r, now: s.runs.finish(r, "not-the-token", "exploded"), id="status"),
        pytest.param(
            lambda s, r, now: s.metrics.write_batch("no-such-run", [("k", 0, 1.0, now)]), id="run"
        ),
    ],
)
def test_values_the_store_refuses_are_loopml_errors_on_every_backend(
    store_url: str, write: Callable[[MetadataStore, str, float], Any]
) -> None:
    """Even written straight through the store API, past the checks ``Run`` makes at the call."""
    store = MetadataStore(store_url).open()
    try:
        new, _ = store.runs.create(pipeline="p", host="h", pid=1, executor="local", lease_s=60)
        _raises_loopml(lambda: write(store, new.id, time.time()))
        assert store.metrics.count(new.id) == 0
        assert store.runs.get(new.id).status == "running"
    finally:
        store.close()


def test_an_s3_artifact_store_that_goes_away_is_a_loopml_error(
    project: Path, s3: Any, s3_bucket: Any
) -> None:
    """Errors from botocore/s3fs (connection reset, endpoint down) reach the caller as loopml's."""
    with CuttingProxy(s3.host, s3.port) as proxy:
        options = {
            **s3.storage_options(endpoint_url=proxy.endpoint_url),
            # Fewer retries than the defaults keep the test short; the errors are the same.
            "config_kwargs": {"retries": {"max_attempts": 1}},
        }
        settings = replace(load_settings(), storage_options=options)
        client = Client(settings, store_uri=str(project / "store.db"), artifacts_uri=s3_bucket.uri)
        stored = client.store_value({"kept": 1})
        client.artifacts.local_path(stored.digest).unlink()  # force the next load to download
        proxy.cut_after(Direction.CLIENT_TO_SERVER, 0)
        started = time.monotonic()
        for call in (
            lambda: client.store_value({"new": 2}),
            lambda: client.load_artifact(stored.digest),
        ):
            error = _raises_loopml(call)
            assert isinstance(error, StorageError), error
            assert s3_bucket.name in str(error), error
        assert time.monotonic() - started < 120
        proxy.pass_all()
        assert client.load_artifact(stored.digest) == {"kept": 1}
        client.close()
