"""R13: ``loopml fsck`` finds every injected corruption, deletes nothing; reads verify.

CI size (the plan's soak size in brackets): 300 blobs [1,000] stored through
``Client.store_value`` so every blob has its row, then 30 one-byte flips [100],
5 truncations, 5 deletions, 5 dangling DB references and 5 orphan blobs [10 each].
Runs on both metadata backends (SQLite and a real PostgreSQL server).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import loopml
from cli_runner import run_cli
from loopml.errors import IntegrityError
from loopml.store import StepWrites
from loopml.tracking.client import Client
from loopml.tracking.fsck import fsck

SCRIPTS = Path(__file__).parent / "_scripts"
BLOBS = 300
FLIPS, TRUNCATIONS, DELETIONS, DANGLING, ORPHANS = 30, 5, 5, 5, 5


def _values(rng: random.Random) -> list[object]:
    """A mix of what users store: raw bytes of many sizes, JSON documents, text, one 8 MiB blob."""
    values: list[object] = [rng.randbytes(8 * 2**20)]
    for i in range(BLOBS - 1):
        kind = i % 3
        if kind == 0:
            values.append(rng.randbytes(rng.randint(1, 120_000)))
        elif kind == 1:
            values.append({"i": i, "weights": [rng.random() for _ in range(rng.randint(1, 400))]})
        else:
            values.append("".join(rng.choice("abcdefgh\n") for _ in range(rng.randint(2, 5_000))))
    return values


def _writable(path: Path) -> None:
    os.chmod(path, 0o644)  # blobs are stored read-only (0444); as root this is a no-op anyway


def _snapshot(objects: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(objects)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(objects.rglob("*"))
        if p.is_file()
    }


def _row_counts(client: Client) -> dict[str, int]:
    tables = ("artifacts", "artifact_links", "runs")
    return client.metadata.db.read(
        lambda tx: {t: int(tx.scalar(f"SELECT COUNT(*) FROM {t}")) for t in tables}
    )


def _timing(project: Path, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "r13_timing.py"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _insert_dangling(client: Client, store_url: str, run_id: str, digests: list[str]) -> None:
    """Links to digests without an artifact row: only possible with foreign keys off."""
    rows = [(run_id, d, "logged", f"dangling-{i}") for i, d in enumerate(digests)]
    sql = "INSERT INTO artifact_links (run_id, digest, direction, name) VALUES ({0}, {0}, {0}, {0})"
    if store_url.startswith("sqlite"):
        db = sqlite3.connect(client.metadata.db.sqlite_path)  # type: ignore[arg-type]
        try:
            db.execute("PRAGMA foreign_keys=OFF")
            db.executemany(sql.format("?"), rows)
            db.commit()
        finally:
            db.close()
        return

    def insert(tx: Any) -> None:
        tx.execute("SET LOCAL session_replication_role = replica")
        tx.executemany(sql.format("?"), rows)

    client.metadata.db.write(insert)


def test_r13_fsck_reports_exactly_the_injected_damage(
    client: Client, store_url: str, project: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(1313)
    records = [client.store_value(v) for v in _values(rng)]
    digests = sorted({r.digest for r in records})
    assert len(digests) == BLOBS
    run_record, _token = client.metadata.runs.create(
        pipeline="r13", host="h", pid=os.getpid(), executor="local", lease_s=3600
    )
    # Every blob is a run's artifact: what fsck must find whole (unreferenced rows are gc's).
    links = StepWrites()
    for i, digest in enumerate(digests):
        links.link(None, "logged", f"value-{i}", digest)
    client.metadata.steps.apply(run_record.id, links)
    total_bytes = sum(client.artifacts.info(d).size for d in digests)  # type: ignore[union-attr]

    # A clean store first: nothing to report, exit 0.
    clean = run_cli("fsck", "--json", cwd=project)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["problems"] == []

    small = [d for d in digests if client.artifacts.info(d).size >= 2]  # type: ignore[union-attr]
    damaged = rng.sample(small, FLIPS + TRUNCATIONS + DELETIONS)
    flipped, truncated, deleted = (
        damaged[:FLIPS],
        damaged[FLIPS : FLIPS + TRUNCATIONS],
        damaged[FLIPS + TRUNCATIONS :],
    )
    expected: set[tuple[str, str]] = set()
    for d in flipped:
        path = Path(client.artifacts.blob_path(d))
        data = bytearray(path.read_bytes())
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        _writable(path)
        path.write_bytes(bytes(data))
        expected.add(("corrupt", d))
    for d in truncated:
        path = Path(client.artifacts.blob_path(d))
        _writable(path)
        os.truncate(path, path.stat().st_size // 2)
        expected.add(("corrupt", d))
    for d in deleted:
        Path(client.artifacts.blob_path(d)).unlink()
        expected.add(("missing", d))
    ghosts = [hashlib.sha256(f"ghost-{i}".encode()).hexdigest() for i in range(DANGLING)]
    _insert_dangling(client, store_url, run_record.id, ghosts)
    expected |= {("dangling", d) for d in ghosts}
    objects = Path(client.settings.artifacts_uri) / "objects"
    for i in range(ORPHANS):
        data = f"orphan {i} {rng.random()}".encode()
        digest = hashlib.sha256(data).hexdigest()
        (objects / digest[:2]).mkdir(exist_ok=True)
        (objects / digest[:2] / digest[2:]).write_bytes(data)
        expected.add(("orphan", digest))

    files_before, rows_before = _snapshot(objects), _row_counts(client)
    started = time.perf_counter()
    result = run_cli("fsck", "--json", cwd=project)
    cli_s = time.perf_counter() - started
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    found = {(p["kind"], p["digest"]) for p in report["problems"]}
    for p in report["problems"]:
        if p["kind"] in ("corrupt", "missing", "orphan"):
            assert p["path"] == client.artifacts.blob_path(p["digest"]), p
    # fsck only reads: every file and every row is still there, byte for byte.
    assert _snapshot(objects) == files_before
    assert _row_counts(client) == rows_before

    second = Client(store_uri=store_url)
    try:
        problems, _ = fsck(second)
    finally:
        second.close()
    fsck_s = _timing(project, "fsck")["seconds"]  # a fresh process: no warm verification memo
    detected = len(expected & found)
    print(
        f"\nR13 [{store_url.split(':')[0]}]: detected {detected}/{len(expected)} injected problems "
        f"({detected / len(expected):.0%}), {len(found - expected)} extra; fsck over {BLOBS} blobs / "
        f"{total_bytes / 2**20:.1f} MiB: {total_bytes / 2**20 / fsck_s:.0f} MiB/s in-process, "
        f"CLI {cli_s:.2f} s wall incl. start-up"
    )
    assert {(p.kind, p.digest) for p in problems} == found
    assert expected - found == set(), sorted(expected - found)
    extra = [p for p in report["problems"] if (p["kind"], p["digest"]) not in expected]
    assert extra == [], extra


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_r13_reads_refuse_a_damaged_blob(client: Client, damage: str) -> None:
    payload = {"model": "ridge", "weights": list(range(1000))}
    digest = client.store_value(payload).digest
    assert loopml.load(digest) == payload
    path = Path(client.artifacts.blob_path(digest))
    _writable(path)
    if damage == "flip":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        os.truncate(path, path.stat().st_size - 1)
    else:
        path.unlink()
    fresh = Client()
    try:
        for load in (loopml.load, client.load_artifact, fresh.load_artifact):
            with pytest.raises(IntegrityError) as caught:
                load(digest)
            assert digest in str(caught.value)
            assert "loopml fsck" in str(caught.value)
    finally:
        fresh.close()


def test_r13_read_verification_overhead(client: Client, project: Path) -> None:
    """Report only (DESIGN.md §6 budgets are figures, not timed asserts): verified vs raw read."""
    data = random.Random(7).randbytes(32 * 2**20)
    digest = client.store_value(data).digest
    timing = _timing(project, "read", digest)
    raw_s, verified_s = timing["raw"], timing["verified"]
    assert timing["bytes"] == len(data)
    print(
        f"\nR13 read verification: raw read {raw_s * 1000:.0f} ms, verified read {verified_s * 1000:.0f} ms "
        f"for 32 MiB (overhead {verified_s / raw_s:.1f}x; includes SHA-256)"
    )
