"""Run rows on both backends: numbering, leases, guarded finish, crash sweep, references."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from loopml.errors import InvalidParameterError, LoopmlError, NotFoundError
from loopml.store import MetadataStore, RunRecord


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    st = MetadataStore(store_url).open()
    yield st
    st.close()


def _create(
    store: MetadataStore, pipeline: str = "p", *, lease_s: float = 60.0
) -> tuple[RunRecord, str]:
    new, token = store.runs.create(
        pipeline=pipeline, host="host-a", pid=4242, executor="local", lease_s=lease_s
    )
    return store.runs.get(new.id), token


def _row(run_id: str, pipeline: str, number: int) -> dict[str, object]:
    """A finished run row with a chosen id, for inserting directly."""
    now = time.time()
    return dict(
        id=run_id,
        pipeline=pipeline,
        number=number,
        name=f"{pipeline}#{number}",
        kind="pipeline",
        status="succeeded",
        started_at=now,
        heartbeat_at=now,
        lease_s=1.0,
        lease_token=uuid.uuid4().hex,
        host="h",
        pid=1,
        executor="local",
    )


def _insert_with_id(store: MetadataStore, run_id: str, pipeline: str, number: int) -> None:
    """A run row with a chosen id (to build ambiguous prefixes deterministically)."""
    _insert_rows(store, [_row(run_id, pipeline, number)])


def _insert_rows(store: MetadataStore, rows: list[dict[str, object]]) -> None:
    columns = list(rows[0])
    store.db.write(
        lambda tx: tx.executemany(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({tx.marks(len(columns))})",
            [tuple(r[c] for c in columns) for r in rows],
        )
    )


# -- create -------------------------------------------------------------------------------


def test_runs_are_numbered_per_pipeline(store: MetadataStore) -> None:
    a = [_create(store, "train")[0] for _ in range(3)]
    b = [_create(store, "eval")[0] for _ in range(2)]
    a.append(_create(store, "train")[0])
    assert [r.number for r in a] == [1, 2, 3, 4]
    assert [r.number for r in b] == [1, 2]
    assert [r.label for r in a] == ["train#1", "train#2", "train#3", "train#4"]
    assert len({r.id for r in a + b}) == 6


def test_a_new_run_is_running_with_its_attributes(store: MetadataStore) -> None:
    before = time.time()
    run, token = _create(store, "train")
    assert run.status == "running"
    assert run.name == "train#1"
    assert run.host == "host-a" and run.pid == 4242 and run.executor == "local"
    assert before - 1 <= run.started_at <= time.time() + 1
    assert run.ended_at is None and run.duration_s is None
    assert run.params == {} and run.metrics == {} and run.tags == {}
    assert len(token) >= 16 and token not in run.id


def test_a_custom_run_name_is_kept(store: MetadataStore) -> None:
    new, _ = store.runs.create(
        pipeline="p", name="my try", host="h", pid=1, executor="local", lease_s=5
    )
    run = store.runs.get(new.id)
    assert run.name == "my try"
    assert run.label == "p#1"


# -- heartbeat and finish --------------------------------------------------------------------


def test_heartbeat_needs_the_lease_token(store: MetadataStore) -> None:
    run, token = _create(store)
    time.sleep(0.02)
    assert store.runs.heartbeat(run.id, "0" * 32) is False
    assert store.runs.get(run.id).heartbeat_at == run.heartbeat_at
    assert store.runs.heartbeat(run.id, token) is True
    assert store.runs.get(run.id).heartbeat_at > run.heartbeat_at


def test_heartbeat_of_an_unknown_run_is_false(store: MetadataStore) -> None:
    assert store.runs.heartbeat(uuid.uuid4().hex, uuid.uuid4().hex) is False


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_finish_moves_a_running_run_to_a_final_status(store: MetadataStore, status: str) -> None:
    run, token = _create(store)
    assert store.runs.finish(
        run.id, token, status, error="boom" if status == "failed" else None, cpu_s=1.5, cost=0.25
    )
    done = store.runs.get(run.id)
    assert done.status == status
    assert done.ended_at is not None and done.ended_at >= done.started_at
    assert done.duration_s == pytest.approx(done.ended_at - done.started_at)
    assert done.cpu_s == 1.5 and done.cost == 0.25
    assert done.error == ("boom" if status == "failed" else None)


def test_finish_with_a_wrong_token_changes_nothing(store: MetadataStore) -> None:
    run, _ = _create(store)
    assert store.runs.finish(run.id, uuid.uuid4().hex, "succeeded") is False
    assert store.runs.get(run.id).status == "running"


def test_finish_twice_keeps_the_first_outcome(store: MetadataStore) -> None:
    run, token = _create(store)
    assert store.runs.finish(run.id, token, "failed", error="first") is True
    assert store.runs.finish(run.id, token, "succeeded") is False
    assert store.runs.heartbeat(run.id, token) is False
    record = store.runs.get(run.id)
    assert record.status == "failed" and record.error == "first"


def test_finish_rejects_an_unknown_status(store: MetadataStore) -> None:
    run, token = _create(store)
    with pytest.raises(InvalidParameterError, match="running|done") as info:
        store.runs.finish(run.id, token, "done")
    assert "succeeded" in str(info.value)  # lists the allowed statuses
    with pytest.raises(InvalidParameterError):
        store.runs.finish(run.id, token, "running")
    assert store.runs.get(run.id).status == "running"


# -- crash sweep ------------------------------------------------------------------------------


def test_sweep_marks_only_expired_running_runs(store: MetadataStore) -> None:
    short, _ = _create(store, "a", lease_s=1.0)
    long_, _ = _create(store, "b", lease_s=1000.0)
    finished, token = _create(store, "c", lease_s=1.0)
    store.runs.finish(finished.id, token, "succeeded")
    now = time.time()

    assert store.runs.sweep_crashed(now=now - 10) == 0
    assert store.runs.get(short.id).status == "running"

    assert store.runs.sweep_crashed(now=now + 100) == 1
    crashed = store.runs.get(short.id)
    assert crashed.status == "crashed"
    assert crashed.ended_at == pytest.approx(crashed.heartbeat_at)
    assert crashed.error and "heartbeat" in crashed.error.lower()
    assert store.runs.get(long_.id).status == "running"
    assert store.runs.get(finished.id).status == "succeeded"

    assert store.runs.sweep_crashed(now=now + 100) == 0  # nothing left to sweep


def test_finish_after_sweep_returns_false(store: MetadataStore) -> None:
    run, token = _create(store, lease_s=1.0)
    assert store.runs.sweep_crashed(now=time.time() + 10) == 1
    assert store.runs.finish(run.id, token, "succeeded") is False
    assert store.runs.heartbeat(run.id, token) is False
    assert store.runs.get(run.id).status == "crashed"


def test_sweep_after_finish_does_nothing(store: MetadataStore) -> None:
    run, token = _create(store, lease_s=1.0)
    assert store.runs.finish(run.id, token, "succeeded") is True
    ended = store.runs.get(run.id)
    assert store.runs.sweep_crashed(now=time.time() + 1e6) == 0
    after = store.runs.get(run.id)
    assert after.status == "succeeded"
    assert after.ended_at == ended.ended_at and after.error is None


def test_a_heartbeat_keeps_the_run_alive(store: MetadataStore) -> None:
    run, token = _create(store, lease_s=0.5)
    time.sleep(0.3)
    assert store.runs.heartbeat(run.id, token)
    assert store.runs.sweep_crashed(now=run.heartbeat_at + 0.6) == 0  # old lease would have expired
    assert store.runs.get(run.id).status == "running"


def test_opening_a_client_sweeps_dead_runs(store_url: str) -> None:
    from loopml.tracking.client import Client

    writer = MetadataStore(store_url).open()
    dead, _ = _create(writer, lease_s=0.05)
    alive, _ = _create(writer, lease_s=600)
    writer.close()
    time.sleep(0.2)
    reader = Client(store_uri=store_url).open()
    try:
        assert reader.metadata.runs.get(dead.id).status == "crashed"
        assert reader.metadata.runs.get(alive.id).status == "running"
    finally:
        reader.close()


# -- references -------------------------------------------------------------------------------


def test_resolve_full_id_prefix_and_label(store: MetadataStore) -> None:
    first, _ = _create(store, "train")
    second, _ = _create(store, "train")
    assert store.runs.resolve(first.id) == first.id
    assert store.runs.resolve(first.id.upper()) == first.id
    assert store.runs.resolve(f"  {second.id}  ") == second.id
    assert store.runs.resolve("train#2") == second.id
    assert store.runs.get("train#1").id == first.id
    # the shortest prefix that is unique among these two runs, at least 4 characters
    n = next(i for i in range(4, 33) if first.id[:i] != second.id[:i])
    assert store.runs.resolve(first.id[:n]) == first.id


def test_resolve_label_of_a_pipeline_with_a_hash_in_its_name(store: MetadataStore) -> None:
    run, _ = _create(store, "a#b")
    assert store.runs.resolve("a#b#1") == run.id


def test_resolve_an_ambiguous_prefix_lists_candidates(store: MetadataStore) -> None:
    _insert_with_id(store, "abcd" + "0" * 28, "p", 1)
    _insert_with_id(store, "abcd" + "1" * 28, "p", 2)
    with pytest.raises(InvalidParameterError) as info:
        store.runs.resolve("abcd")
    message = str(info.value)
    assert "ambiguous" in message
    assert "abcd00000000" in message and "abcd11111111" in message
    assert store.runs.resolve("abcd1") == "abcd" + "1" * 28


@pytest.mark.parametrize("ref", ["abc", "a", "0"])
def test_resolve_a_too_short_prefix(store: MetadataStore, ref: str) -> None:
    with pytest.raises(InvalidParameterError, match="at least 4"):
        store.runs.resolve(ref)


@pytest.mark.parametrize("ref", ["", "   ", "xyz!", "run-1", "12345g", "%%%%", "abcd_"])
def test_resolve_malformed_references(store: MetadataStore, ref: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        store.runs.resolve(ref)
    assert "PIPELINE#NUMBER" in str(info.value) or "at least 4" in str(info.value)


@pytest.mark.parametrize("ref", ["train#x", "train#", "train#-1", "train#1.5"])
def test_resolve_a_label_without_a_number(store: MetadataStore, ref: str) -> None:
    _create(store, "train")
    with pytest.raises(InvalidParameterError, match="PIPELINE#NUMBER"):
        store.runs.resolve(ref)


@pytest.mark.parametrize(
    "ref", ["train#99", "nosuch#1", "ffff", "0123456789abcdef0123456789abcdef"]
)
def test_resolve_unknown_runs(store: MetadataStore, ref: str) -> None:
    _create(store, "train")
    with pytest.raises(NotFoundError) as info:
        store.runs.resolve(ref)
    assert ref in str(info.value)
    assert "loopml runs" in str(info.value)  # tells the user how to list runs
    assert isinstance(info.value, LookupError) and isinstance(info.value, LoopmlError)


# -- reading -----------------------------------------------------------------------------------


def test_load_keeps_the_requested_order_and_skips_unknown_ids(store: MetadataStore) -> None:
    runs = [_create(store)[0] for _ in range(3)]
    ids = [runs[2].id, uuid.uuid4().hex, runs[0].id, runs[1].id]
    assert [r.id for r in store.runs.load(ids)] == [runs[2].id, runs[0].id, runs[1].id]
    assert store.runs.load([]) == []


def test_load_many_runs_in_chunks(store: MetadataStore) -> None:
    """1,200 runs: more than two of load's 500-id chunks, each run whole and in the asked order."""
    count = 1_200
    rows = [_row(uuid.uuid4().hex, f"p{i % 3}", i // 3 + 1) for i in range(count)]
    _insert_rows(store, rows)
    # params, metrics and tags on every 8th run and on both sides of each chunk boundary
    extras = sorted({*range(0, count, 8), 499, 500, 999, 1000, count - 1})
    store.db.write(
        lambda tx: [
            (
                tx.execute(
                    "INSERT INTO params (run_id, key, value, num) VALUES (?, 'i', ?, ?)",
                    (rows[i]["id"], str(i), float(i)),
                ),
                tx.execute(
                    "INSERT INTO latest_metrics (run_id, key, step, value) VALUES (?, 'loss', 0, ?)",
                    (rows[i]["id"], i / 10),
                ),
                tx.execute(
                    "INSERT INTO tags (run_id, key, value) VALUES (?, 'run', ?)",
                    (rows[i]["id"], str(i)),
                ),
            )
            for i in extras
        ]
    )
    wanted = [str(row["id"]) for row in reversed(rows)]
    loaded = store.runs.load(wanted)
    assert [r.id for r in loaded] == wanted
    for i, record in zip(reversed(range(count)), loaded, strict=True):
        assert record.name == rows[i]["name"] and record.status == "succeeded"
        if i in extras:
            assert (record.params, record.metrics, record.tags) == (
                {"i": str(i)},
                {"loss": i / 10},
                {"run": str(i)},
            ), i
        else:
            assert (record.params, record.metrics, record.tags) == ({}, {}, {}), i


def test_update_info_stores_capture_fields(store: MetadataStore) -> None:
    run, token = _create(store)
    env = {"python": "3.11.9", "packages": {"numpy": "2.0"}}
    store.runs.update_info(run.id, environment=env, git_commit="a" * 40, git_dirty=True)
    store.runs.finish(run.id, token, "succeeded")
    store.runs.update_info(run.id, git_diff_digest="b" * 64)  # also after the run ended
    record = store.runs.get(run.id)
    assert record.environment == env
    assert record.git_commit == "a" * 40 and record.git_dirty is True
    assert record.git_diff_digest == "b" * 64
    assert json.loads(json.dumps(record.environment)) == env
