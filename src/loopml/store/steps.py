"""Step-run rows, the step cache (cache key -> output digests) and what each key was made of.

The runner records steps in batches (:class:`StepWrites`): a whole chain of cached steps
lands in one transaction, together with its lineage links and cache entries, and only
while the run is still running (a swept run refuses them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loopml.store.engine import Database, Tx
from loopml.store.lineage import DIRECTIONS
from loopml.store.records import StepRunRecord
from loopml.store.runs import EnvRow, insert_environment, require_running
from loopml.store.status import StepStatus
from loopml.store.validate import check_name

_STEP_COLUMNS = (
    "id, run_id, name, position, status, cached, cache_key, started_at, ended_at, wall_s, "
    "cpu_s, peak_mem_bytes, cpus, gpus, stdout, stderr, error, traceback, reason, host, "
    "attempts, env_digest"
)
_UPDATABLE = {
    "status",
    "cached",
    "cache_key",
    "started_at",
    "ended_at",
    "wall_s",
    "cpu_s",
    "peak_mem_bytes",
    "stdout",
    "stderr",
    "error",
    "traceback",
    "reason",
    "host",
    "attempts",
    "env_digest",
}


@dataclass
class StepWrites:
    """Step updates, lineage links and cache entries to write in one transaction."""

    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    links: list[tuple[str | None, str, str, str]] = field(default_factory=list)
    cache: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)
    bases: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    environments: list[EnvRow] = field(default_factory=list)

    def update(self, step_run_id: str, **values: Any) -> None:
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"step_runs has no updatable columns {sorted(unknown)}")
        self.updates.append((step_run_id, values))

    def link(self, step_run_id: str | None, direction: str, name: str, digest: str) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"link direction {direction!r} not in {DIRECTIONS}")
        self.links.append((step_run_id, direction, name, digest))

    def cache_entry(self, key: str, step: str, entry: dict[str, Any], step_run_id: str) -> None:
        self.cache.append((key, step, entry, step_run_id))

    def basis(self, key: str, basis: dict[str, Any]) -> None:
        """What cache key ``key`` was computed from (kept once per key)."""
        self.bases.append((key, basis))

    def environment(self, env: EnvRow) -> None:
        """An environment a step ran in (stored once; the step names it by ``env_digest``)."""
        self.environments.append(env)

    def __bool__(self) -> bool:
        return bool(self.updates or self.links or self.cache or self.bases or self.environments)

    def take(self) -> StepWrites:
        """Move everything into a new batch and leave this one empty."""
        taken = StepWrites(self.updates, self.links, self.cache, self.bases, self.environments)
        self.updates, self.links, self.cache, self.bases = [], [], [], []
        self.environments = []
        return taken


class Steps:
    """Step runs and cache entries of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def insert_pending(self, run_id: str, steps: Sequence[tuple[str, str, float, float]]) -> None:
        """Insert the run's steps as ``pending``: (step run id, name, cpus, gpus) in order."""
        rows = [
            (sid, run_id, check_name("Step name", name), pos, cpus, gpus)
            for pos, (sid, name, cpus, gpus) in enumerate(steps)
        ]

        def write(tx: Tx) -> None:
            require_running(tx, run_id)
            tx.executemany(
                "INSERT INTO step_runs (id, run_id, name, position, status, cached, cpus, gpus) "
                f"VALUES (?, ?, ?, ?, '{StepStatus.PENDING}', FALSE, ?, ?)",
                rows,
            )

        self.db.write(write)

    def host_of(self, step_run_id: str) -> str | None:
        """Where a step is running or ran, as its worker recorded it (None: not yet said)."""
        return self.placement(step_run_id)[0]

    def placement(self, step_run_id: str) -> tuple[str | None, float | None]:
        """(where, when) a step began, as its worker recorded it; (None, …) before it said."""
        row = self.db.read(
            lambda tx: tx.one("SELECT host, started_at FROM step_runs WHERE id = ?", (step_run_id,))
        )
        return (row[0], row[1]) if row else (None, None)

    def apply(self, run_id: str, writes: StepWrites) -> None:
        """Write a batch of step updates, links and cache entries while the run is running."""
        if not writes:
            return

        def write(tx: Tx) -> None:
            require_running(tx, run_id)
            apply_writes(tx, run_id, writes)

        self.db.write(write)

    def for_run(self, run_id: str) -> list[StepRunRecord]:
        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT {_STEP_COLUMNS} FROM step_runs WHERE run_id = ? ORDER BY position",
                (run_id,),
            )
        )
        return [_step(r) for r in rows]

    def cache_hit(self, key: str) -> dict[str, Any] | None:
        """The entry under ``key`` (``{"outputs": {ref: digest}, "logged": …, "step_run_id": …}``).

        A hit also marks its output artifacts as just used, in the same transaction, so
        gc's grace period protects them until this run has linked them (R14).
        """

        def read(tx: Tx) -> dict[str, Any] | None:
            row = tx.one("SELECT outputs, step_run_id FROM step_cache WHERE key = ?", (key,))
            if row is None:
                return None
            entry: dict[str, Any] = dict(json.loads(row[0]))
            entry["step_run_id"] = row[1]
            digests = sorted(set(entry.get("outputs", {}).values()))
            if digests:
                marks = tx.marks(len(digests))
                sizes = dict(
                    tx.all(f"SELECT digest, size FROM artifacts WHERE digest IN ({marks})", digests)
                )
                if len(sizes) != len(digests):
                    return None  # an output's row is gone (gc): a miss
                tx.execute(
                    f"UPDATE artifacts SET touched_at = {tx.now} WHERE digest IN ({marks})", digests
                )
                entry["sizes"] = {str(d): int(n) for d, n in sizes.items()}
            return entry

        return self.db.write(read)

    def cache_source(self, step_run_id: str) -> tuple[str, int, str] | None:
        """(pipeline, run number, step name) of the step run that made a cache entry."""
        row = self.db.read(
            lambda tx: tx.one(
                "SELECT r.pipeline, r.number, s.name FROM step_runs s "
                "JOIN runs r ON r.id = s.run_id WHERE s.id = ?",
                (step_run_id,),
            )
        )
        return None if row is None else (str(row[0]), int(row[1]), str(row[2]))

    def previous_basis(
        self, pipeline: str, step: str, exclude_run: str
    ) -> tuple[dict[str, Any], str, int, str] | None:
        """What the latest earlier run of this pipeline step was keyed on: (basis, pipeline,
        run number, step status)."""
        row = self.db.read(
            lambda tx: tx.one(
                "SELECT b.basis, r.pipeline, r.number, s.status FROM step_runs s "
                "JOIN runs r ON r.id = s.run_id JOIN step_basis b ON b.key = s.cache_key "
                "WHERE s.name = ? AND r.pipeline = ? AND s.run_id != ? "
                "AND s.started_at IS NOT NULL ORDER BY s.started_at DESC LIMIT 1",
                (step, pipeline, exclude_run),
            )
        )
        if row is None:
            return None
        return dict(json.loads(row[0])), str(row[1]), int(row[2]), str(row[3])

    def forget_cache(self, digests: Sequence[str]) -> int:
        """Drop every cache entry handing out one of ``digests`` (their steps will run again)."""
        if not digests:
            return 0

        def write(tx: Tx) -> int:
            keys = tx.all(
                f"SELECT DISTINCT key FROM cache_outputs WHERE digest IN ({tx.marks(len(digests))})",
                list(digests),
            )
            if not keys:
                return 0
            return tx.execute(
                f"DELETE FROM step_cache WHERE key IN ({tx.marks(len(keys))})",
                [k[0] for k in keys],
            )

        return self.db.write(write)


def apply_writes(tx: Tx, run_id: str, writes: StepWrites) -> None:
    """Run a :class:`StepWrites` batch inside an open transaction."""
    for env in writes.environments:
        insert_environment(tx, env)
    for step_run_id, values in writes.updates:
        names = sorted(values)
        row = [
            json.dumps(values[n]) if n == "reason" and values[n] is not None else values[n]
            for n in names
        ]
        tx.execute(
            f"UPDATE step_runs SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
            (*row, step_run_id),
        )
    tx.executemany(
        "INSERT INTO artifact_links (run_id, step_run_id, digest, direction, name) "
        "VALUES (?, ?, ?, ?, ?)",
        [(run_id, sid, digest, direction, name) for sid, direction, name, digest in writes.links],
    )
    for key, step, entry, step_run_id in writes.cache:
        tx.execute(
            "INSERT INTO step_cache (key, step, outputs, step_run_id, created_at) "
            f"VALUES (?, ?, ?, ?, {tx.now}) ON CONFLICT (key) DO UPDATE SET "
            "outputs = excluded.outputs, step_run_id = excluded.step_run_id, "
            "created_at = excluded.created_at",
            (key, step, json.dumps(entry, sort_keys=True), step_run_id),
        )
        tx.execute("DELETE FROM cache_outputs WHERE key = ?", (key,))
        tx.executemany(
            "INSERT INTO cache_outputs (key, digest) VALUES (?, ?)",
            [(key, d) for d in sorted(set(entry.get("outputs", {}).values()))],
        )
    tx.executemany(
        "INSERT INTO step_basis (key, basis) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        [(key, json.dumps(basis, sort_keys=True)) for key, basis in writes.bases],
    )


def _step(row: tuple[Any, ...]) -> StepRunRecord:
    return StepRunRecord(
        id=row[0],
        run_id=row[1],
        name=row[2],
        position=row[3],
        status=StepStatus(row[4]),
        cached=bool(row[5]),
        cache_key=row[6],
        started_at=row[7],
        ended_at=row[8],
        wall_s=row[9],
        cpu_s=row[10],
        peak_mem_bytes=row[11],
        cpus=row[12],
        gpus=row[13],
        stdout=row[14],
        stderr=row[15],
        error=row[16],
        traceback=row[17],
        reason=json.loads(row[18]) if row[18] else None,
        host=row[19],
        attempts=row[20],
        env_digest=row[21],
    )
