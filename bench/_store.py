"""Store figures at scale: ``runs.get`` among 200,000 runs, and ``gc`` over 100,000 blobs.

Both stores are filled in bulk, not through the tracking API (which would take minutes):
runs rows through the store's own transaction with executemany, blobs written directly as
files under ``objects/`` with their artifact rows. Only the calls users make are timed.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

from _timing import Options, fmt_ms, fmt_s, median, percentile, report, temp_project
from _tracking import RUN_COLUMNS, insert_rows, run_row

PREFIX = 8  # characters of a run id prefix, as users paste them


# --- runs.get among many runs -------------------------------------------------------------


def _fill_runs(store: Any, n: int, seed: int = 11) -> list[str]:
    """Insert ``n`` finished runs (rows of the runs table only); returns their ids."""
    rng = random.Random(seed)
    base = time.time() - n
    ids = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(n)]
    rows = [run_row(run_id, i + 1, base + i) for i, run_id in enumerate(ids)]
    store.db.write(lambda tx: insert_rows(tx, "runs", RUN_COLUMNS, rows))
    return ids


def bench_run_get(opts: Options) -> None:
    n = opts.pick(200_000, 20_000)
    probes = opts.pick(300, 100)
    with temp_project("get"):
        from loopml.tracking.client import default_client

        client = default_client().open()
        started = time.perf_counter()
        ids = _fill_runs(client.metadata, n)
        fill_s = time.perf_counter() - started
        prefixes: dict[str, int] = {}
        for run_id in ids:
            prefixes[run_id[:PREFIX]] = prefixes.get(run_id[:PREFIX], 0) + 1
        unique = [i for i in ids if prefixes[i[:PREFIX]] == 1]  # an ambiguous prefix is an error
        chosen = random.Random(3).sample(unique, probes)
        get = client.metadata.runs.get
        for run_id in chosen[:20]:  # warm-up: SQLite's page cache, the code paths
            get(run_id)
            get(run_id[:PREFIX])
        for label, length in (("full id", 32), (f"{PREFIX}-char prefix", PREFIX)):
            times, wrong = [], 0
            for run_id in chosen:
                ref = run_id[:length]
                t0 = time.perf_counter()
                record = get(ref)
                times.append(time.perf_counter() - t0)
                wrong += record.id != run_id
            check = "each the right run" if not wrong else f"WRONG RESULT ({wrong} wrong runs)"
            report(
                opts,
                f"runs.get by {label} at {n:,} runs",
                f"p50 {fmt_ms(median(times))}, p95 {fmt_ms(percentile(times, 95))}, "
                f"min {fmt_ms(min(times))} over {probes} different runs "
                f"(MetadataStore.runs.get with params, metrics, tags; {check}; SQLite; "
                f"bulk insert took {fill_s:.1f} s)",
            )


# --- gc over many blobs -------------------------------------------------------------------


def _fill_blobs(client: Any, n: int) -> tuple[list[str], list[str], int]:
    """Write ``n`` small blobs as files plus their artifact rows, all created a day ago.

    Even-numbered blobs are linked to one run (kept by gc), odd ones to nothing (collected).
    Returns (referenced digests, unreferenced digests, bytes of the unreferenced ones).
    """
    old = time.time() - 86_400
    kept, loose, loose_bytes, rows = [], [], 0, []
    folders: set[Path] = set()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for i in range(n):
        data = b"%08d" % i * (1 + i % 64)  # 8 to 512 bytes
        digest = hashlib.sha256(data).hexdigest()
        path = Path(client.artifacts.blob_path(digest))
        if path.parent not in folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            folders.add(path.parent)
        fd = os.open(path, flags, 0o444)  # read-only, as the store publishes blobs
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        rows.append((digest, "bytes", "bytes", len(data), "{}", old, old))
        if i % 2:
            loose.append(digest)
            loose_bytes += len(data)
        else:
            kept.append(digest)
    run_id = uuid.uuid4().hex
    links = [(run_id, digest, "logged", f"blob{i}") for i, digest in enumerate(kept)]

    def insert(tx: Any) -> None:
        insert_rows(tx, "runs", RUN_COLUMNS, [run_row(run_id, 1, old)])
        columns = "digest, materializer, type_name, size, meta, created_at, touched_at"
        insert_rows(tx, "artifacts", columns, rows)
        insert_rows(tx, "artifact_links", "run_id, digest, direction, name", links)

    client.metadata.db.write(insert)
    return kept, loose, loose_bytes


def bench_gc(opts: Options) -> None:
    n = opts.pick(100_000, 10_000)
    with temp_project("gc"):
        from loopml.tracking.client import default_client

        client = default_client().open()
        started = time.perf_counter()
        kept, loose, loose_bytes = _fill_blobs(client, n)
        fill_s = time.perf_counter() - started
        exists = os.path.exists

        def present(digests: list[str]) -> int:
            return sum(exists(client.artifacts.blob_path(d)) for d in digests)

        t0 = time.perf_counter()
        dry = client.gc(dry_run=True, grace_s=0)
        dry_s = time.perf_counter() - t0
        right = {d for d, _ in dry.candidates} == set(loose) and present(loose) == len(loose)
        check = (
            f"{len(dry.candidates):,} candidates, {dry.bytes / 1e6:.2f} MB, nothing deleted"
            if right
            else f"WRONG RESULT ({len(dry.candidates):,} candidates, expected {len(loose):,})"
        )
        report(
            opts,
            f"gc --dry-run over a store of {n:,} blobs",
            f"{fmt_s(dry_s)} = {n / dry_s:,.0f} blobs/s ({check}; half referenced by a run, "
            f"half unreferenced and a day old; store filled in {fill_s:.1f} s)",
        )
        t0 = time.perf_counter()
        done = client.gc(grace_s=0)
        gc_s = time.perf_counter() - t0
        survivors, leftovers = present(kept), present(loose)
        right = (
            len(done.deleted) == len(loose)
            and done.bytes == loose_bytes
            and survivors == len(kept)
            and leftovers == 0
        )
        check = (
            f"{len(done.deleted):,} deleted, {done.bytes / 1e6:.2f} MB reclaimed; "
            f"the {survivors:,} referenced blobs all still there"
            if right
            else f"WRONG RESULT ({len(done.deleted):,} deleted, {survivors:,} of {len(kept):,} "
            f"referenced blobs left, {leftovers:,} unreferenced left)"
        )
        report(
            opts,
            f"gc over a store of {n:,} blobs",
            f"{fmt_s(gc_s)} = {n / gc_s:,.0f} blobs/s scanned, "
            f"{len(done.deleted) / gc_s:,.0f} deleted/s ({check})",
        )
