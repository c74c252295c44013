"""R03 for the model registry: 32 processes register versions of one model and promote them
to one alias at the same moment, on SQLite and on PostgreSQL.

Versions are exactly 1..32; every promotion either moved the alias or got a clear conflict
(never an error of another kind); and the alias history is one unbroken chain: each move
starts from the version the previous move left, so no promotion overwrote another unseen.
"""

from __future__ import annotations

from pathlib import Path

import _store_workers as w

from loopml.store import MetadataStore

PROCESSES = 32


def test_r03_versions_and_alias_moves_under_a_crowd(store_url: str, project: Path) -> None:
    artifacts = str(project / ".loopml" / "blobs")
    MetadataStore(store_url).open().close()
    ctx = w.context()
    barrier = ctx.Barrier(PROCESSES)  # type: ignore[attr-defined]
    results = ctx.Queue()  # type: ignore[attr-defined]
    reports = w.run_all(
        ctx,
        [
            (w.r03_registrar, (str(project), store_url, artifacts, i, barrier, results))
            for i in range(PROCESSES)
        ],
        results,
    )
    errors = [r["error"] for r in reports if "error" in r] + [
        e for r in reports for e in r["thread_errors"]
    ]
    assert errors == [], "\n".join(errors)
    assert sorted(r["number"] for r in reports) == list(range(1, PROCESSES + 1))
    assert all(r["created"] for r in reports)
    moved = [r for r in reports if r["promoted"]]
    conflicts = [r["conflict"] for r in reports if not r["promoted"]]
    assert moved, "at least the first promotion must win"
    assert all("moved meanwhile" in c for c in conflicts), conflicts[:3]

    store = MetadataStore(store_url).open()
    try:
        history = store.models.history("m", "champion")
        holder = store.models.aliases("m")["champion"]
    finally:
        store.close()
    assert len(history) == len(moved)
    previous = None
    for event in history:  # one chain: nobody moved it from a holder it no longer had
        assert event.from_number == previous
        previous = event.to_number
    assert previous == holder
    backend = store_url.split(":", 1)[0]
    print(
        f"\nR03 registry {backend}: versions 1..{PROCESSES}; {len(moved)} promotions moved "
        f"the alias, {len(conflicts)} got a conflict; history is one chain ending at @{holder}"
    )
