"""Artifact rows and the links that make lineage: which run or step produced, read or logged a digest.

An artifact row is written *before* its blob is published (``reserve``) and carries
``touched_at``, the last time a writer or a cache hit claimed it. gc deletes a blob only
inside a transaction that finds its row unreferenced and untouched for the grace period,
so a writer that claims a digest either sees gc's deletion finished (and writes the blob
again) or makes gc skip it: a blob written during gc survives (RELIABILITY.md R14).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from loopml.errors import InvalidParameterError, NotFoundError
from loopml.store.engine import Database, Tx
from loopml.store.records import ArtifactLink, ArtifactRecord
from loopml.store.runs import CHUNK, chunks

DIRECTIONS = ("input", "output", "logged")
_ARTIFACT_COLUMNS = "digest, materializer, type_name, size, meta, created_at"
_HEX = set("0123456789abcdef")
# A digest is referenced while a lineage link, a cache entry, a dataset version, a suite, an
# evaluation or a model version names it.
_REFERENCED = (
    "(EXISTS (SELECT 1 FROM artifact_links l WHERE l.digest = artifacts.digest) "
    "OR EXISTS (SELECT 1 FROM cache_outputs c WHERE c.digest = artifacts.digest) "
    "OR EXISTS (SELECT 1 FROM dataset_versions v WHERE v.digest = artifacts.digest) "
    "OR EXISTS (SELECT 1 FROM dataset_versions p WHERE p.profile_digest = artifacts.digest) "
    "OR EXISTS (SELECT 1 FROM dataset_validations s WHERE s.schema_digest = artifacts.digest) "
    "OR EXISTS (SELECT 1 FROM dataset_validations r WHERE r.report_digest = artifacts.digest) "
    "OR EXISTS (SELECT 1 FROM suite_versions i WHERE i.indices_digest = artifacts.digest) "
    "OR EXISTS (SELECT 1 FROM evaluations m WHERE m.model_digest = artifacts.digest) "
    "OR EXISTS (SELECT 1 FROM evaluations e WHERE e.predictions_digest = artifacts.digest) "
    "OR EXISTS (SELECT 1 FROM evaluations f WHERE f.result_digest = artifacts.digest) "
    "OR EXISTS (SELECT 1 FROM model_versions g WHERE g.digest = artifacts.digest))"
)


class Lineage:
    """Artifact rows and links of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writing --------------------------------------------------------------------------

    def reserve(self, records: Iterable[ArtifactRecord]) -> None:
        """Insert or re-claim artifact rows before their blobs are published (see module doc)."""
        rows = [
            (
                r.digest,
                r.materializer,
                r.type_name,
                r.size,
                json.dumps(r.metadata, sort_keys=True),
                r.created_at or time.time(),
            )
            for r in records
        ]
        if rows:
            self.db.write(lambda tx: reserve_rows(tx, rows))

    def record(
        self,
        artifact: ArtifactRecord,
        *,
        run_id: str,
        step_run_id: str | None,
        direction: str,
        name: str,
    ) -> None:
        """Link an artifact (already reserved) to a run/step."""
        if direction not in DIRECTIONS:
            raise InvalidParameterError(
                f"Link direction: got {direction!r}; expected one of {DIRECTIONS}."
            )
        from loopml.store.validate import check_key

        check_key("Artifact", name)

        def write(tx: Tx) -> None:
            tx.execute(
                "INSERT INTO artifact_links (run_id, step_run_id, digest, direction, name) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, step_run_id, artifact.digest, direction, name),
            )

        self.db.write(write)

    # -- reading --------------------------------------------------------------------------

    def get(self, ref: str) -> ArtifactRecord:
        """An artifact by full digest or a unique prefix (at least 6 hex characters)."""
        if not isinstance(ref, str):
            raise InvalidParameterError(f"Artifact reference: got {ref!r}; expected a digest.")
        ref = ref.strip().lower().removeprefix("sha256:")
        if len(ref) < 6 or len(ref) > 64 or not set(ref) <= _HEX:
            shown = ref if len(ref) <= 80 else ref[:77] + "..."
            raise InvalidParameterError(
                f"Artifact reference {shown!r}: expected a SHA-256 digest or a prefix of at "
                "least 6 hex characters."
            )
        if len(ref) == 64:
            rows = self.db.read(
                lambda tx: tx.all(
                    f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE digest = ?", (ref,)
                )
            )
        else:
            from loopml.store.runs import _next_prefix

            rows = self.db.read(
                lambda tx: tx.all(
                    f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE digest >= ? AND digest < ? "
                    "ORDER BY digest LIMIT 6",
                    (ref, _next_prefix(ref)),
                )
            )
        if not rows:
            raise NotFoundError(
                f"No artifact with digest {ref!r}. List them with `loopml artifacts list`."
            )
        if len(rows) > 1:
            listed = ", ".join(f"{r[0][:16]} ({r[2]})" for r in rows[:5])
            raise InvalidParameterError(
                f"Artifact prefix {ref!r} is ambiguous: it matches {listed}"
                f"{' and more' if len(rows) > 5 else ''}. Give more characters."
            )
        return _artifact(rows[0])

    def find(self, digests: Sequence[str]) -> dict[str, ArtifactRecord]:
        """The rows of those ``digests`` that exist."""
        found: dict[str, ArtifactRecord] = {}
        for chunk in chunks(list(digests), CHUNK):

            def read(tx: Tx, c: list[str] = chunk) -> list[tuple[Any, ...]]:
                return tx.all(
                    f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE digest IN ({tx.marks(len(c))})",
                    c,
                )

            for row in self.db.read(read):
                found[row[0]] = _artifact(row)
        return found

    def recent(
        self, *, limit: int = 100, offset: int = 0, run_id: str | None = None
    ) -> list[ArtifactRecord]:
        """Rows newest first (ties by digest, so pages with ``offset`` never repeat a row)."""
        if run_id is None:
            rows = self.db.read(
                lambda tx: tx.all(
                    f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts "
                    "ORDER BY created_at DESC, digest LIMIT ? OFFSET ?",
                    (limit, offset),
                )
            )
        else:
            rows = self.db.read(
                lambda tx: tx.all(
                    f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE digest IN "
                    "(SELECT digest FROM artifact_links WHERE run_id = ?) "
                    "ORDER BY created_at DESC, digest LIMIT ? OFFSET ?",
                    (run_id, limit, offset),
                )
            )
        return [_artifact(r) for r in rows]

    def all_digests(self) -> set[str]:
        return {str(r[0]) for r in self.db.read(lambda tx: tx.all("SELECT digest FROM artifacts"))}

    def referenced_digests(self) -> set[str]:
        """Digests a lineage link, a cache entry or a dataset version names: what must exist
        and be intact."""
        return {
            str(r[0])
            for r in self.db.read(
                lambda tx: tx.all(
                    "SELECT digest FROM artifact_links UNION SELECT digest FROM cache_outputs "
                    "UNION SELECT digest FROM dataset_versions "
                    "UNION SELECT profile_digest FROM dataset_versions "
                    "WHERE profile_digest IS NOT NULL "
                    "UNION SELECT schema_digest FROM dataset_validations "
                    "UNION SELECT report_digest FROM dataset_validations"
                )
            )
        }

    def dangling_links(self) -> list[tuple[int, str]]:
        """Links whose digest has no artifact row (possible only when foreign keys were off)."""
        rows = self.db.read(
            lambda tx: tx.all(
                "SELECT id, digest FROM artifact_links WHERE digest NOT IN "
                "(SELECT digest FROM artifacts)"
            )
        )
        return [(int(i), str(d)) for i, d in rows]

    def links(self, *, digest: str | None = None, run_id: str | None = None) -> list[ArtifactLink]:
        where, params = [], []
        if digest is not None:
            where.append("l.digest = ?")
            params.append(digest)
        if run_id is not None:
            where.append("l.run_id = ?")
            params.append(run_id)
        sql = (
            "SELECT l.run_id, l.step_run_id, s.name, l.digest, l.direction, l.name "
            "FROM artifact_links l LEFT JOIN step_runs s ON s.id = l.step_run_id"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY l.id"
        )
        return [
            ArtifactLink(
                run_id=r[0], step_run_id=r[1], step=r[2], digest=r[3], direction=r[4], name=r[5]
            )
            for r in self.db.read(lambda tx: tx.all(sql, params))
        ]

    # -- garbage collection ---------------------------------------------------------------

    def unreferenced(self, older_than: float) -> list[tuple[str, int]]:
        """(digest, size) of rows no link or cache entry names, untouched since ``older_than``."""
        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT digest, size FROM artifacts WHERE NOT {_REFERENCED} "
                "AND COALESCE(touched_at, created_at) < ? ORDER BY digest",
                (older_than,),
            )
        )
        return [(str(d), int(s)) for d, s in rows]

    def collect(
        self, digests: Sequence[str], older_than: float, delete_blob: Callable[[str], None]
    ) -> list[str]:
        """Delete rows *and* blobs of ``digests`` still unreferenced and untouched; returns them.

        The blob is deleted inside the transaction that deletes its row: a writer reserving
        the same digest waits for the transaction and then finds neither (so it writes the
        blob again), or reserved it first (so it is touched and skipped here).
        """
        done: list[str] = []
        for chunk in chunks(list(digests), 200):

            def write(tx: Tx, chunk: list[str] = chunk) -> list[str]:
                lock = "" if self.db.is_sqlite else " FOR UPDATE"
                gone = [
                    str(r[0])
                    for r in tx.all(
                        f"SELECT digest FROM artifacts WHERE digest IN ({tx.marks(len(chunk))}) "
                        f"AND NOT {_REFERENCED} AND COALESCE(touched_at, created_at) < ?{lock}",
                        (*chunk, older_than),
                    )
                ]
                for digest in gone:
                    delete_blob(digest)
                if gone:
                    tx.execute(
                        f"DELETE FROM artifacts WHERE digest IN ({tx.marks(len(gone))})", gone
                    )
                return gone

            done += self.db.write(write)
        return done

    def adopt_orphans(self, blobs: Sequence[tuple[str, int, float]]) -> None:
        """Give blobs without a row, as (digest, size, written at), a placeholder row dated
        when the blob was written, so gc collects them under the same rule as the rest."""
        rows = [(d, "orphan", "unknown", size, "{}", written) for d, size, written in blobs]
        for start in range(0, len(rows), CHUNK):

            def write(tx: Tx, part: list[tuple[Any, ...]] = rows[start : start + CHUNK]) -> None:
                reserve_rows(tx, part, touch=False)

            self.db.write(write)

    def unused_environments(self) -> int:
        """Delete environment rows no run points to; returns how many."""
        return int(
            self.db.write(
                lambda tx: tx.execute(
                    "DELETE FROM environments WHERE digest NOT IN "
                    "(SELECT env_digest FROM runs WHERE env_digest IS NOT NULL)"
                )
            )
        )


def reserve_rows(tx: Tx, rows: Sequence[tuple[Any, ...]], *, touch: bool = True) -> None:
    """Insert artifact rows, or mark existing ones as just claimed (``touched_at`` = now).

    With ``touch=False`` new rows get ``touched_at = created_at`` and existing rows stay.
    """
    columns = "digest, materializer, type_name, size, meta, created_at, touched_at"
    if touch:
        tx.executemany(
            f"INSERT INTO artifacts ({columns}) VALUES (?, ?, ?, ?, ?, ?, {tx.now}) "
            f"ON CONFLICT (digest) DO UPDATE SET touched_at = {tx.now}",
            rows,
        )
    else:
        tx.executemany(
            f"INSERT INTO artifacts ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (digest) DO NOTHING",
            [(*r, r[5]) for r in rows],
        )


def _artifact(row: tuple[Any, ...]) -> ArtifactRecord:
    return ArtifactRecord(
        digest=row[0],
        materializer=row[1],
        type_name=row[2],
        size=int(row[3]),
        metadata=json.loads(row[4]),
        created_at=float(row[5]),
    )
