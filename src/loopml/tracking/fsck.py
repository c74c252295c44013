"""``fsck``: prove the store is whole (RELIABILITY.md "store check" and R13).

Problems found, each with its digest, path and kind:

- ``missing``: a row references a digest with no blob;
- ``corrupt``: a blob does not hash to its digest (bit flip, truncation);
- ``orphan``: a blob no row references (harmless; ``gc`` may delete it later);
- ``dangling``: a lineage link to a digest without an artifact row;
- ``temp``: a temporary file left by a dead writer;
- ``database``: SQLite ``PRAGMA integrity_check`` or foreign keys are not ok.

fsck only reads: it never deletes or rewrites anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopml.errors import IntegrityError, NotFoundError
from loopml.tracking.client import Client


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    digest: str
    path: str
    detail: str


def fsck(
    client: Client, *, on_progress: Callable[[int, int], None] | None = None
) -> tuple[list[Problem], int]:
    """Check every artifact and blob; returns (problems, bytes verified)."""
    client.open()
    store, blobs = client.metadata, client.artifacts
    problems: list[Problem] = []
    db = store.db
    if db.is_sqlite:

        def checks(conn: Any) -> tuple[str, list[tuple[Any, ...]]]:
            ok = conn.exec_driver_sql("PRAGMA integrity_check").scalar()
            fks = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            return str(ok), [tuple(fk) for fk in fks]

        ok, fks = db.read(checks)
        if ok != "ok":
            problems.append(Problem("database", "", db.safe_url, f"integrity_check: {ok}"))
        for fk in fks:
            if fk[0] == "artifact_links" and fk[2] == "artifacts":
                continue  # reported below as 'dangling', with its digest
            problems.append(Problem("database", "", db.safe_url, f"foreign key violation: {fk}"))
    referenced = store.lineage.all_digests()
    verified = 0
    ordered = sorted(referenced)
    for i, digest in enumerate(ordered):
        path = blobs.blob_path(digest)
        try:
            blobs.verify(digest)
            verified += 1
        except NotFoundError:
            problems.append(
                Problem("missing", digest, path, "referenced by the metadata store, no blob")
            )
        except IntegrityError as exc:
            kind = "missing" if "missing" in str(exc).lower() else "corrupt"
            problems.append(Problem(kind, digest, path, str(exc).splitlines()[0]))
        if on_progress:
            on_progress(i + 1, len(ordered))
    for digest in blobs.iter_digests():
        if digest not in referenced:
            problems.append(
                Problem("orphan", digest, blobs.blob_path(digest), "blob not referenced by any row")
            )
    for link_id, digest in store.lineage.dangling_links():
        problems.append(
            Problem("dangling", digest, "", f"lineage link {link_id} has no artifact row")
        )
    for temp in blobs.iter_temp():
        problems.append(
            Problem(
                "temp", "", temp, "temporary file (removed at the next start if its writer is gone)"
            )
        )
    return problems, verified
