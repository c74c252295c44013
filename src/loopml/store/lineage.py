"""Artifact rows and the links that make lineage: which run or step produced, read or logged a digest."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from loopml.errors import InvalidParameterError, NotFoundError
from loopml.store import schema as s
from loopml.store.engine import Database
from loopml.store.records import ArtifactLink, ArtifactRecord

DIRECTIONS = ("input", "output", "logged")


class Lineage:
    """Artifact rows and links of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        artifact: ArtifactRecord,
        *,
        run_id: str,
        step_run_id: str | None,
        direction: str,
        name: str,
    ) -> None:
        """Insert the artifact row if new (digest is the key) and link it to a run/step."""

        def write(conn: Connection) -> None:
            self.insert_artifacts([artifact], conn)
            self.link_many(conn, run_id, step_run_id, [(direction, name, artifact.digest)])

        self.db.write(write)

    def link_many(
        self,
        conn: Connection,
        run_id: str,
        step_run_id: str | None,
        links: Iterable[tuple[str, str, str]],
    ) -> None:
        """Link digests to a run/step in one statement; ``links`` are (direction, name, digest)."""
        rows = []
        for direction, name, digest in links:
            if direction not in DIRECTIONS:
                raise InvalidParameterError(
                    f"Link direction: got {direction!r}; expected one of {DIRECTIONS}."
                )
            rows.append(
                {
                    "run_id": run_id,
                    "step_run_id": step_run_id,
                    "digest": digest,
                    "direction": direction,
                    "name": name,
                }
            )
        if rows:
            conn.execute(s.artifact_links.insert(), rows)

    def insert_artifacts(self, records: Iterable[ArtifactRecord], conn: Connection) -> None:
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
        mark = "?" if self.db.is_sqlite else "%s"
        conn.exec_driver_sql(
            "INSERT INTO artifacts (digest, materializer, type_name, size, meta, created_at) "
            f"VALUES ({', '.join([mark] * 6)}) ON CONFLICT (digest) DO NOTHING",
            rows,
        )

    def get(self, ref: str) -> ArtifactRecord:
        """An artifact by full digest or a unique prefix (at least 6 hex characters)."""
        ref = ref.strip().lower().removeprefix("sha256:")
        if len(ref) < 6 or not all(ch in "0123456789abcdef" for ch in ref):
            raise InvalidParameterError(
                f"Artifact reference {ref!r}: expected a SHA-256 digest or a prefix of at least 6 hex characters."
            )
        rows = self.db.read(
            lambda c: (
                c.execute(
                    sa.select(s.artifacts).where(s.artifacts.c.digest.like(ref + "%")).limit(2)
                )
                .mappings()
                .all()
            )
        )
        if not rows:
            raise NotFoundError(
                f"No artifact with digest {ref!r}. List them with `loopml artifacts list`."
            )
        if len(rows) > 1:
            raise InvalidParameterError(
                f"Artifact prefix {ref!r} is ambiguous; give more characters."
            )
        return _artifact(rows[0])

    def recent(self, *, limit: int = 100, run_id: str | None = None) -> list[ArtifactRecord]:
        q = sa.select(s.artifacts).order_by(s.artifacts.c.created_at.desc()).limit(limit)
        if run_id is not None:
            q = q.where(
                s.artifacts.c.digest.in_(
                    sa.select(s.artifact_links.c.digest).where(s.artifact_links.c.run_id == run_id)
                )
            )
        return [_artifact(r) for r in self.db.read(lambda c: c.execute(q).mappings().all())]

    def all_digests(self) -> set[str]:
        return set(
            self.db.read(lambda c: c.execute(sa.select(s.artifacts.c.digest)).scalars().all())
        )

    def dangling_links(self) -> list[tuple[int, str]]:
        """Links whose digest has no artifact row (possible only when foreign keys were off)."""
        q = sa.select(s.artifact_links.c.id, s.artifact_links.c.digest).where(
            ~s.artifact_links.c.digest.in_(sa.select(s.artifacts.c.digest))
        )
        return [(int(i), str(d)) for i, d in self.db.read(lambda c: c.execute(q).all())]

    def links(self, *, digest: str | None = None, run_id: str | None = None) -> list[ArtifactLink]:
        q = (
            sa.select(s.artifact_links, s.step_runs.c.name.label("step"))
            .select_from(
                s.artifact_links.outerjoin(
                    s.step_runs, s.step_runs.c.id == s.artifact_links.c.step_run_id
                )
            )
            .order_by(s.artifact_links.c.id)
        )
        if digest is not None:
            q = q.where(s.artifact_links.c.digest == digest)
        if run_id is not None:
            q = q.where(s.artifact_links.c.run_id == run_id)
        return [
            ArtifactLink(
                run_id=r["run_id"],
                step_run_id=r["step_run_id"],
                step=r["step"],
                digest=r["digest"],
                direction=r["direction"],
                name=r["name"],
            )
            for r in self.db.read(lambda c: c.execute(q).mappings().all())
        ]


def _artifact(row: Any) -> ArtifactRecord:
    return ArtifactRecord(
        digest=row["digest"],
        materializer=row["materializer"],
        type_name=row["type_name"],
        size=int(row["size"]),
        metadata=json.loads(row["meta"]),
        created_at=float(row["created_at"]),
    )
