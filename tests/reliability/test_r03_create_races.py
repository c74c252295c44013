"""R03, adapted to the core loop: 32 processes create runs and the same artifact at once.

The registry (experiments, models, aliases) does not exist yet; the races it would have
are here in their core-loop form: run numbers per pipeline (create-or-number) and
content-addressed artifact rows (create-or-get).
Pass: run numbers are exactly {1..32}; one artifacts row; every call succeeded.
Report: retries, wall time, slowest process.
"""

from __future__ import annotations

import time
from pathlib import Path

import _store_workers as w

from loopml.store import MetadataStore

PROCESSES = 32


def test_r03_run_numbers_and_artifact_rows_under_a_crowd(store_url: str, project: Path) -> None:
    artifacts = str(project / ".loopml" / "blobs")
    MetadataStore(store_url).open().close()  # R04 covers creating the store in a crowd

    ctx = w.context()
    barrier = ctx.Barrier(PROCESSES)  # type: ignore[attr-defined]
    results = ctx.Queue()  # type: ignore[attr-defined]
    started = time.monotonic()
    reports = w.run_all(
        ctx,
        [(w.r03_worker, (str(project), store_url, artifacts, barrier, results))] * PROCESSES,
        results,
    )
    wall = time.monotonic() - started

    errors = [r["error"] for r in reports if "error" in r] + [
        e for r in reports for e in r["thread_errors"]
    ]
    assert errors == [], "\n".join(errors)
    assert sorted(r["number"] for r in reports) == list(range(1, PROCESSES + 1))
    assert {r["status"] for r in reports} == {"succeeded"}
    assert len({r["digest"] for r in reports}) == 1  # the same bytes, the same digest

    store = MetadataStore(store_url).open()
    try:
        rows = store.db.read(lambda tx: [r[0] for r in tx.all("SELECT digest FROM artifacts")])
        labels = sorted(r.label for r in store.search("pipeline = 'p'", limit=1000))
    finally:
        store.close()
    assert rows == [reports[0]["digest"]]
    assert labels == sorted(f"p#{n}" for n in range(1, PROCESSES + 1))

    backend = store_url.split(":", 1)[0]
    print(
        f"\nR03 {backend}: {PROCESSES} processes, run numbers 1..{PROCESSES}, 1 artifact row; "
        f"retries {sum(r['retries'] for r in reports)}, longest retry wait "
        f"{max(r['longest_wait_s'] for r in reports) * 1e3:.1f} ms; wall {wall:.2f} s "
        f"(slowest start+store+end {max(r['elapsed_s'] for r in reports):.2f} s)"
    )
