"""R14: gc is safe under concurrency, and its dry run lists exactly what it deletes.

The store holds old blobs that nothing references any more (their run was deleted), old
blobs that runs and step-cache entries still reference, and young unreferenced blobs
inside the grace period (with a row, and orphans with none). gc then runs while
4 writer processes add artifacts and an in-flight run logs the content of the old,
unreferenced blobs again (new references to blobs gc is deleting).

Pass: afterwards every run artifact and cache entry loads (0 broken references) and
``fsck`` finds nothing; every blob a writer stored survives; young blobs are untouched;
gc deleted only old unreferenced blobs; on a quiet store the dry-run list equals what is
then deleted. Report: bytes reclaimed, broken references (must be 0).
Runs on both metadata backends (SQLite and a real PostgreSQL server).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _gc_workers as w

from loopml.tracking.client import Client

OLD, KEPT, YOUNG, ORPHANS, WRITERS = 450, 20, 20, 5, 4  # gc deletes in batches of 200
GRACE_S = 3600.0


@dataclass
class Store:
    old: list[bytes]  # contents of old blobs whose run was deleted
    old_digests: set[str]
    kept: set[str]  # old blobs a run or a cache entry still references
    young: set[str]  # unreferenced blobs inside the grace period
    orphans: set[str]  # young blobs with no row at all (a writer died before recording it)


def _blob(rng: random.Random, label: str) -> bytes:
    return f"{label} ".encode() + rng.randbytes(rng.randint(2_000, 20_000))


def _prepare(client: Client) -> Store:
    rng = random.Random(14)
    old = [_blob(rng, f"old {i}") for i in range(OLD)]
    with client.start_run("gone") as run:
        old_digests = {run.log_artifact(value, f"old{i}") for i, value in enumerate(old)}
        gone = run.id
    with client.start_run("keep") as run:
        kept = {run.log_artifact(_blob(rng, f"kept {i}"), f"k{i}") for i in range(KEPT)}
    from pl_basic import train  # a pipeline: its outputs are linked and cached

    trained = train(n=10, alpha=0.5)
    kept |= {link.digest for link in client.links(run=trained.id)}
    client.delete_runs([gone])
    client.metadata.db.write(
        lambda tx: tx.execute(
            f"UPDATE artifacts SET created_at = created_at - 7200, touched_at = {tx.now} - 7200"
        )
    )
    young = {client.store_value(_blob(rng, f"young {i}")).digest for i in range(YOUNG)}
    orphans = {client.artifacts.put_bytes(_blob(rng, f"orphan {i}")).digest for i in range(ORPHANS)}
    return Store(old, old_digests, kept, young, orphans)


def _broken(client: Client) -> list[str]:
    """Digests that a lineage link or a cache entry names but that do not load."""
    broken = []
    for digest in sorted(client.metadata.lineage.referenced_digests()):
        try:
            client.load_artifact(digest)
        except Exception as exc:
            broken.append(f"{digest}: {exc}")
    return broken


def _files(client: Client, digests: set[str]) -> dict[str, tuple[int, int]]:
    found = {}
    for digest in digests:
        st = Path(client.artifacts.blob_path(digest)).stat()
        found[digest] = (st.st_ino, st.st_mtime_ns)
    return found


def test_r14_dry_run_lists_exactly_what_gc_deletes_on_a_quiet_store(
    client: Client, store_url: str
) -> None:
    store = _prepare(client)
    figures = []
    # First the old unreferenced blobs; then, with no grace, the young ones and the orphans
    # (which gc first gives a row: the dry run must foresee that too).
    for grace_s, expected in ((GRACE_S, store.old_digests), (0.0, store.young | store.orphans)):
        dry = client.gc(dry_run=True, grace_s=grace_s)
        planned = sorted(d for d, _ in dry.candidates)
        assert planned == sorted(expected)
        assert all(client.artifacts.exists(d) for d in planned)  # the dry run deleted nothing
        done = client.gc(grace_s=grace_s)
        assert sorted(done.deleted) == planned and done.bytes == dry.bytes > 0
        assert not any(client.artifacts.exists(d) for d in planned)
        assert _broken(client) == []
        figures.append(f"{len(planned)} blobs ({dry.bytes:,} bytes)")
    assert client.gc(dry_run=True, grace_s=0).candidates == []
    assert all(client.artifacts.exists(d) for d in store.kept)
    print(
        f"\nR14 quiet [{store_url.partition(':')[0]}]: dry run = deleted: "
        + ", then with no grace ".join(figures)
    )


def _wait_for(condition: Any, procs: list[Any], results: Any, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        if any(not p.is_alive() for p in procs):
            raise AssertionError(f"a worker ended before {what}: {results.get(timeout=10)}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_r14_gc_while_writers_and_an_inflight_run_reference_blobs(
    client: Client, project: Path, store_url: str
) -> None:
    store = _prepare(client)
    young_before = _files(client, store.young | store.orphans)
    artifacts = client.settings.artifacts_uri
    ctx = w.context()
    started = ctx.Value("i", 0)  # type: ignore[attr-defined]
    logged = ctx.Value("i", 0)  # type: ignore[attr-defined]
    stop = ctx.Event()  # type: ignore[attr-defined]
    results = ctx.Queue()  # type: ignore[attr-defined]
    procs = [
        ctx.Process(  # type: ignore[attr-defined]
            target=w.writer,
            args=(str(project), store_url, artifacts, i, started, stop, results),
        )
        for i in range(WRITERS)
    ]
    procs.append(
        ctx.Process(  # type: ignore[attr-defined]
            target=w.inflight,
            args=(str(project), store_url, artifacts, store.old, logged, stop, results),
        )
    )
    for p in procs:
        p.start()
    try:
        # gc starts once every writer is writing and the run has re-referenced a few old
        # blobs: the rest it references again while gc deletes them, or after.
        _wait_for(lambda: started.value >= 3 * WRITERS, procs, results, "the writers started")
        _wait_for(lambda: logged.value >= 10, procs, results, "the in-flight run started")
        at_start = logged.value

        def pause(done: int, total: int) -> None:
            """After the first batch, let the run reference blobs of the later batches: gc
            listed them as unreferenced, so it must check each again before deleting it."""
            if done == 200:
                seen = logged.value
                _wait_for(lambda: logged.value >= seen + 30, procs, results, "more references")

        report = client.gc(grace_s=GRACE_S, on_progress=pause)
        during = logged.value - at_start
        stop.set()
        outs = [results.get(timeout=300) for _ in procs]
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    assert [o["error"] for o in outs if "error" in o] == []
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    [run] = [o for o in outs if o["role"] == "inflight"]
    written = {d for o in outs if o["role"] == "writer" for d in o["digests"]}

    deleted = set(report.deleted)
    assert deleted <= store.old_digests  # only old, unreferenced blobs
    again = deleted & store.old_digests  # deleted, then referenced again by the live run
    assert again, "gc deleted none of the blobs the in-flight run was re-referencing"
    broken = _broken(client)
    assert broken == []
    assert client.fsck().problems == []
    assert all(client.artifacts.is_intact(d, client.artifact(d).size) for d in written)
    assert _files(client, store.young | store.orphans) == young_before  # untouched
    assert all(client.artifacts.exists(d) for d in store.kept)
    assert run["status"] == "succeeded"
    by_name = {link.name: link.digest for link in client.links(run=run["run_id"])}
    assert set(by_name.values()) == store.old_digests
    for i in random.Random(1).sample(range(OLD), 20):
        assert client.load_artifact(by_name[f"old{i}"]) == store.old[i]
    print(
        f"\nR14 [{store_url.partition(':')[0]}]: bytes reclaimed {report.bytes:,} "
        f"({len(deleted)} blobs, {len(again)} of them referenced again by the in-flight run, "
        f"which logged {during} times during gc and {run['links']} in all); "
        f"{len(written)} blobs written by {WRITERS} writers during gc, all intact; "
        f"young blobs untouched {len(young_before)}/{YOUNG + ORPHANS}; "
        f"broken references {len(broken)}"
    )
