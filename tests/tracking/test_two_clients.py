"""Two clients on two stores in one process (issue 12 §2, "No process-wide state").

A long-lived server will hold several projects at once. Before, the store, materializer
registry and heartbeat were process-wide; now each ``Client`` owns its connections,
artifact store, materializers and heartbeat. Two clients (two SQLite stores in different
folders, or SQLite beside PostgreSQL) run pipelines and ad-hoc runs from threads at the
same time: every run, metric and blob lands only in its own store, each cache serves
only its own store, a materializer registered on one client is unknown to the other,
both heartbeats keep their runs alive, and closing one leaves the other working.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import loopml
from loopml import Client, pipeline, step
from loopml.errors import MaterializerError

RUNS_PER_CLIENT = 3


@step
def numbers(n: int, offset: int) -> list[int]:
    return [offset + i for i in range(n)]


@step
def summed(xs: list[int]) -> int:
    loopml.log_metric("total", float(sum(xs)))
    return sum(xs)


@pipeline
def add_up(n: int = 5, offset: int = 0):
    return summed(numbers(n, offset))


@pytest.fixture(params=["sqlite+sqlite", "sqlite+postgres"])
def two(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Client]]:
    """Two clients on two stores, each with its own artifact folder."""
    urls = [f"sqlite:///{tmp_path / 'a' / 'store.db'}"]
    if request.param == "sqlite+postgres":
        urls.append(
            request.getfixturevalue("postgres").create_database(f"t_{uuid.uuid4().hex[:12]}")
        )
    else:
        urls.append(f"sqlite:///{tmp_path / 'b' / 'store.db'}")
    clients = [
        Client(store_uri=url, artifacts_uri=str(tmp_path / name / "blobs")).open()
        for url, name in zip(urls, "ab", strict=True)
    ]
    yield clients
    for c in clients:
        c.close()


def _work(client: Client, offset: int, barrier: threading.Barrier, done: dict[str, Any]) -> None:
    ids = []
    barrier.wait(timeout=60)
    for i in range(RUNS_PER_CLIENT):
        run = add_up.run({"n": 5, "offset": offset}, client=client)
        ids.append(run.id)
        with client.start_run(f"adhoc-{offset}") as adhoc:
            adhoc.log_metric("i", float(i))
            adhoc.log_param("offset", offset)
        ids.append(adhoc.id)
    done[client.metadata.url] = ids


def test_runs_from_two_threads_land_only_in_their_own_store(two: list[Client]) -> None:
    barrier = threading.Barrier(2)
    done: dict[str, Any] = {}
    errors: list[BaseException] = []

    def guarded(client: Client, offset: int) -> None:
        try:
            _work(client, offset, barrier, done)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=guarded, args=(c, offset))
        for c, offset in zip(two, (0, 100), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    for client, offset in zip(two, (0, 100), strict=True):
        stored = client.search_runs(limit=1000)
        assert sorted(r.id for r in stored) == sorted(done[client.metadata.url])
        pipelines = [r for r in stored if r.pipeline == "add_up"]
        assert len(pipelines) == RUNS_PER_CLIENT
        assert all(r.status == "succeeded" for r in stored)
        assert {r.metrics["total"] for r in pipelines} == {float(sum(range(offset, offset + 5)))}
        assert {r.params["offset"] for r in stored} == {str(offset)}
        # Its own cache: the first run computed, the later ones reused this store's outputs.
        by_number = sorted(pipelines, key=lambda r: r.number)
        assert [all(s.cached for s in client.steps(r.id)) for r in by_number] == [
            False,
            *[True] * (RUNS_PER_CLIENT - 1),
        ]
    a, b = two
    blobs_a, blobs_b = set(a.artifacts.iter_digests()), set(b.artifacts.iter_digests())
    assert blobs_a and blobs_b and not blobs_a & blobs_b  # different values, different blobs
    assert {r.digest for r in a.list_artifacts(limit=1000)} <= blobs_a
    assert {r.digest for r in b.list_artifacts(limit=1000)} <= blobs_b


def test_the_same_pipeline_is_computed_once_per_store(two: list[Client]) -> None:
    a, b = two
    first = add_up.run({"n": 3, "offset": 7}, client=a)
    again = add_up.run({"n": 3, "offset": 7}, client=a)
    elsewhere = add_up.run({"n": 3, "offset": 7}, client=b)
    assert not any(s.cached for s in first.steps)
    assert all(s.cached for s in again.steps)
    assert not any(s.cached for s in elsewhere.steps)  # b's cache knows nothing of a's runs
    assert elsewhere.output("summed") == 24


@dataclass(frozen=True)
class Point:
    x: int
    y: int


class PointMaterializer:
    name = "test.point"
    extension = ".txt"

    def save(self, value: Point, path: Path) -> dict[str, Any]:
        path.write_text(f"{value.x},{value.y}")
        return {}

    def load(self, path: Path, metadata: dict[str, Any]) -> Point:
        x, y = path.read_text().split(",")
        return Point(int(x), int(y))


@step
def make_point(x: int) -> Point:
    return Point(x, x + 1)


@pipeline
def pointy(x: int = 1):
    return make_point(x)


def test_a_materializer_registered_on_one_client_is_unknown_to_the_other(
    two: list[Client],
) -> None:
    a, b = two
    a.materializers.register(Point, PointMaterializer())
    record = a.store_value(Point(1, 2))
    assert record.materializer == "test.point"
    assert a.load_artifact(record.digest) == Point(1, 2)
    with pytest.raises(MaterializerError, match="No materializer for values of type"):
        b.store_value(Point(1, 2))
    assert pointy.run({"x": 3}, client=a).output("make_point") == Point(3, 4)
    with pytest.raises(loopml.errors.StepFailedError, match="No materializer"):
        pointy.run({"x": 3}, client=b)
    # Nor did it reach the process-wide registry new clients start from.
    with pytest.raises(MaterializerError):
        Client(store_uri=str(Path.cwd() / "c.db")).store_value(Point(1, 2))


def _heartbeat_at(client: Client, run_id: str) -> tuple[float, float, float]:
    row = client.metadata.db.read(
        lambda tx: tx.one(
            "SELECT heartbeat_at, started_at, lease_s FROM runs WHERE id = ?", (run_id,)
        )
    )
    assert row is not None
    return float(row[0]), float(row[1]), float(row[2])


def test_both_heartbeats_keep_their_runs_alive_and_closing_one_leaves_the_other(
    two: list[Client],
) -> None:
    a, b = two
    assert a.heartbeat is not b.heartbeat
    runs = [a.start_run("long-a"), b.start_run("long-b")]
    try:
        # Wait until each store shows its lease renewed past twice its original expiry.
        deadline = time.monotonic() + 120
        for client, run in zip(two, runs, strict=True):
            while True:
                beat, started, lease = _heartbeat_at(client, run.id)
                if beat - started > 2 * lease:
                    break
                assert time.monotonic() < deadline, "a heartbeat stopped renewing its lease"
                time.sleep(0.05)
        # Judged by leases alone (as another host would), neither run is due to be swept.
        assert a.metadata.runs.sweep_crashed() == 0
        assert b.metadata.runs.sweep_crashed() == 0
        assert a.heartbeat.live_runs() == [runs[0]] and b.heartbeat.live_runs() == [runs[1]]
        runs[0].log_metric("m", 1.0)
        runs[0].end()
        a.close()
        # b is untouched by a's close: its run keeps beating, logging and ends normally.
        before = _heartbeat_at(b, runs[1].id)[0]
        while _heartbeat_at(b, runs[1].id)[0] <= before:
            assert time.monotonic() < deadline, "b's heartbeat stopped when a was closed"
            time.sleep(0.05)
        runs[1].log_metric("m", 2.0)
        runs[1].end()
    finally:
        for run in runs:
            run.end()
    assert b.run_record(runs[1].id).status == "succeeded"
    assert b.run_record(runs[1].id).metrics == {"m": 2.0}
    reopened = Client(store_uri=a.metadata.url, artifacts_uri=a.settings.artifacts_uri)
    assert reopened.run_record(runs[0].id).metrics == {"m": 1.0}
    assert reopened.run_record(runs[0].id).status == "succeeded"
