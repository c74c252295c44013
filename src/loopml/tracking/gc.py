"""``gc``: delete blobs that nothing references any more (RELIABILITY.md R14).

A blob is kept while a lineage link (a run's input, output or logged artifact) or a step
cache entry names it, and for ``grace_s`` after any writer or cache hit last claimed it.
Deleting a run (``loopml runs delete``) removes its links and cache entries; gc then frees
the blobs only that run used.

Safe while other processes write: each blob is deleted inside the database transaction
that re-checks it is still unreferenced and unclaimed (``Lineage.collect``), and writers
claim a digest in the database before they publish its blob. Blobs with no row at all
(left by a crash between publishing and recording) first get a placeholder row dated when
the blob was written, then follow the same rule. ``dry_run`` lists exactly what a real run
would delete on a quiet store.

gc also aborts S3 multipart uploads that were started more than ``grace_s`` ago and never
completed, in the artifact store and on the ``[remote]`` (RELIABILITY.md R11): a push or
write cut while the network was down could not abort its own, and they would otherwise
stay on the server for good. An upload younger than the grace period may still be running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopml.tracking.client import Client


@dataclass
class GcReport:
    dry_run: bool
    grace_s: float
    candidates: list[tuple[str, int]] = field(default_factory=list)  # (digest, size)
    deleted: list[str] = field(default_factory=list)
    environments: int = 0
    #: Incomplete multipart uploads aborted (or, on a dry run, that would be), as
    #: ``<location> (upload <id>)``.
    uploads: list[str] = field(default_factory=list)
    #: What gc could not check, e.g. an unreachable remote's uploads.
    warnings: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """Bytes freed (or, on a dry run, that would be)."""
        chosen = {d for d, _ in self.candidates} if self.dry_run else set(self.deleted)
        return sum(size for digest, size in self.candidates if digest in chosen)


def gc(
    client: Client,
    *,
    dry_run: bool = False,
    grace_s: float = 3600.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> GcReport:
    """Delete unreferenced blobs older than the grace period; see the module doc."""
    from loopml.errors import InvalidParameterError

    if not 0 <= grace_s < 10**9:
        raise InvalidParameterError(f"gc grace: got {grace_s!r} seconds; expected a number >= 0.")
    client.open()
    store, blobs = client.metadata, client.artifacts
    report = GcReport(dry_run=dry_run, grace_s=grace_s)
    now = store.db.read(lambda tx: float(tx.scalar(f"SELECT {tx.now}")))
    cutoff = now - grace_s
    rows = store.lineage.all_digests()
    orphans: dict[str, tuple[int, float]] = {}
    for digest in blobs.iter_digests():
        if digest in rows:
            continue
        info = blobs.info(digest)
        if info is not None:
            written = info.modified if info.modified is not None else time.time()
            orphans[digest] = (info.size, written)
    old_orphans = {d: v for d, v in orphans.items() if v[1] < cutoff}
    _abort_stale_uploads(client, time.time() - grace_s, report)
    if dry_run:
        report.candidates = sorted(
            [*store.lineage.unreferenced(cutoff), *((d, s) for d, (s, _) in old_orphans.items())]
        )
        return report
    store.lineage.adopt_orphans([(d, size, written) for d, (size, written) in orphans.items()])
    report.candidates = store.lineage.unreferenced(cutoff)
    total = len(report.candidates)
    done = 0
    for start in range(0, total, 200):
        batch = [d for d, _ in report.candidates[start : start + 200]]
        report.deleted += store.lineage.collect(batch, cutoff, blobs.retire)
        blobs.empty_trash()  # the unlinks, outside the transaction
        done += len(batch)
        if on_progress:
            on_progress(done, total)
    report.environments = store.lineage.unused_environments()
    return report


def _abort_stale_uploads(client: Client, cutoff: float, report: GcReport) -> None:
    """Abort multipart uploads started before ``cutoff`` (wall clock, as S3 dates them)."""
    from loopml.artifacts import FsspecBackend
    from loopml.errors import RemoteError, StorageError

    places = [client.artifacts.backend]
    if client.settings.remote_url:
        from loopml.tracking.sync import open_remote

        try:
            places.append(open_remote(client.settings, create=True))
        except RemoteError as exc:
            report.warnings.append(f"Leftover multipart uploads on the remote not checked: {exc}")
    for backend in places:
        if not isinstance(backend, FsspecBackend) or not backend.s3:
            continue
        try:
            for upload in backend.uploads("objects/"):
                if upload.initiated is None or upload.initiated >= cutoff:
                    continue
                if not report.dry_run:
                    backend.abort(upload)
                report.uploads.append(f"{backend.uri}/{upload.key} (upload {upload.upload_id})")
        except StorageError as exc:
            report.warnings.append(
                f"Leftover multipart uploads in {backend.uri} not checked: {exc}"
            )
