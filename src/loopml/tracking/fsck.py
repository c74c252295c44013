"""``fsck``: prove the store is whole (RELIABILITY.md "store check" and R13), and repair it.

Problems found, each with its digest, path and kind:

- ``missing``: a run's lineage or a cache entry references a digest with no blob (an
  artifact row that nothing references yet, left by a writer killed between claiming a
  digest and publishing its blob, is not a problem: ``gc`` removes it; the report counts
  them as ``unpublished``);
- ``corrupt``: a blob does not hash to its digest (bit flip, truncation);
- ``orphan``: a blob no row references (harmless; ``gc`` deletes it);
- ``dangling``: a lineage link to a digest without an artifact row;
- ``temp``: a temporary file left by a writer;
- ``database``: SQLite ``PRAGMA integrity_check`` or foreign keys are not ok, or the
  database cannot be read at all.

Without ``repair`` fsck only reads. With it, it fixes what can be fixed and says what it
could not: a corrupt blob is removed; a missing or corrupt remote blob is uploaded again
from a verified local copy when there is one; the cache entries handing out a missing or
corrupt blob are dropped, so the steps that made it run again and store it afresh; dead
writers' temp files are removed. It never deletes a blob that is intact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loopml.errors import IntegrityError, LoopmlError, NotFoundError, StoreCorruptError

if TYPE_CHECKING:
    from loopml.tracking.client import Client


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    digest: str
    path: str
    detail: str
    repair: str = ""  # what --repair did about it, or why it could not


@dataclass
class FsckReport:
    problems: list[Problem] = field(default_factory=list)
    verified: int = 0
    bytes_verified: int = 0
    repaired: int = 0
    unpublished: int = 0

    @property
    def unrepaired(self) -> list[Problem]:
        return [p for p in self.problems if not p.repair.startswith("repaired")]

    def __iter__(self):  # type: ignore[no-untyped-def]
        """``problems, verified = fsck(client)`` keeps working."""
        return iter((self.problems, self.verified))


def _database_problems(client: Client) -> list[Problem]:
    db = client.metadata.db
    if not db.is_sqlite:
        return []
    try:
        ok, fks = db.read(
            lambda tx: (
                str(tx.scalar("PRAGMA integrity_check")),
                tx.all("PRAGMA foreign_key_check"),
            )
        )
    except StoreCorruptError as exc:
        return [Problem("database", "", db.where, str(exc))]
    problems = []
    if ok != "ok":
        problems.append(Problem("database", "", db.where, f"integrity_check: {ok}"))
    for fk in fks:
        if fk[0] == "artifact_links" and fk[2] == "artifacts":
            continue  # reported below as 'dangling', with its digest
        problems.append(Problem("database", "", db.where, f"foreign key violation: {tuple(fk)}"))
    return problems


def fsck(
    client: Client,
    *,
    repair: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> FsckReport:
    """Check every artifact and blob (and repair what can be, with ``repair``)."""
    report = FsckReport()
    # Opening a writable client already removes dead writers' temp files: list them first
    # so that --repair can say what it removed.
    temps = set(client.artifacts.iter_temp()) if repair else set()
    try:
        client.open()
    except StoreCorruptError as exc:
        report.problems.append(Problem("database", "", client.metadata.db.where, str(exc)))
        return report
    report.problems += _database_problems(client)
    store, blobs = client.metadata, client.artifacts
    try:
        rows = store.lineage.find(sorted(store.lineage.all_digests()))
        referenced = store.lineage.referenced_digests()
    except StoreCorruptError as exc:
        report.problems.append(Problem("database", "", store.db.where, str(exc)))
        return report
    damaged: list[str] = []
    for i, (digest, record) in enumerate(sorted(rows.items())):
        if on_progress:
            on_progress(i + 1, len(rows))
        path = blobs.blob_path(digest)
        try:
            blobs.verify(digest)
            report.verified += 1
            report.bytes_verified += record.size
        except (NotFoundError, IntegrityError) as exc:
            kind = "missing" if "missing" in str(exc).lower() else "corrupt"
            if kind == "missing" and digest not in referenced:
                report.unpublished += 1  # claimed, never published, unused: gc's business
                continue
            fix = _repair_blob(client, digest, kind) if repair else ""
            if not fix.startswith("repaired"):
                damaged.append(digest)
            report.problems.append(Problem(kind, digest, path, str(exc).splitlines()[0], fix))
    if repair and damaged:
        dropped = store.steps.forget_cache(damaged)
        note = (
            f"; dropped {dropped} cache entr{'y' if dropped == 1 else 'ies'} handing it out, so "
            "the step that made it runs again"
            if dropped
            else ""
        )
        report.problems = [
            _with_repair(p, note) if p.digest in damaged else p for p in report.problems
        ]
    for digest in blobs.iter_digests():
        if digest not in rows:
            report.problems.append(
                Problem(
                    "orphan",
                    digest,
                    blobs.blob_path(digest),
                    "blob not referenced by any row",
                    "left for `loopml gc`, which deletes unreferenced blobs" if repair else "",
                )
            )
    for link_id, digest in store.lineage.dangling_links():
        report.problems.append(
            Problem(
                "dangling",
                digest,
                "",
                f"lineage link {link_id} has no artifact row",
                "not repairable: restore the store from a backup" if repair else "",
            )
        )
    if repair:
        temps |= set(blobs.iter_temp())
        blobs.clean_temp()
        for temp in sorted(temps - set(blobs.iter_temp())):
            report.problems.append(
                Problem(
                    "temp",
                    "",
                    temp,
                    "temporary file left by a writer that is gone",
                    "repaired: removed it",
                )
            )
    for temp in blobs.iter_temp():
        report.problems.append(
            Problem(
                "temp",
                "",
                temp,
                "temporary file (removed at the next start if its writer is gone)",
                "kept: its writer is still running" if repair else "",
            )
        )
    if repair:
        report.problems = [
            p
            if p.repair or p.kind not in ("database",)
            else _with_repair(p, "not repairable by fsck: restore the database from a backup")
            for p in report.problems
        ]
        report.repaired = sum(1 for p in report.problems if p.repair.startswith("repaired"))
    return report


def _with_repair(problem: Problem, note: str) -> Problem:
    text = problem.repair + note if problem.repair else note.lstrip("; ")
    return Problem(problem.kind, problem.digest, problem.path, problem.detail, text)


def _repair_blob(client: Client, digest: str, kind: str) -> str:
    """Fix one damaged blob if a verified copy exists; otherwise remove the damage."""
    blobs = client.artifacts
    try:
        if blobs.restore_from_cache(digest):
            return "repaired: uploaded again from the verified local copy"
        if kind == "corrupt":
            blobs.delete(digest)
            return "removed the damaged blob (no intact copy exists)"
        return "no copy exists"
    except LoopmlError as exc:
        return f"could not repair: {exc}"
