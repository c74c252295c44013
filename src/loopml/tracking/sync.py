"""``push`` and ``pull``: copy blobs between this store and the remote named in ``loopml.toml``.

The remote (``[remote] url``: ``s3://bucket/prefix`` or a folder) holds blobs under the
same keys as the artifact store (``objects/<2 hex>/<62 hex>``), through the same
backends, so a remote is just another :class:`~loopml.artifacts.BlobBackend`. What to copy
is what the metadata knows: every digest with an artifact row. This module sits in
``tracking/`` because it needs both the metadata and the blobs.

Guarantees (RELIABILITY.md R11):

* Only what is missing moves. ``push`` skips a blob the remote holds at the right size;
  ``pull`` skips a local blob that is intact. A rerun after an interruption therefore
  resumes where the last one stopped, with no resume state to go stale.
* Nothing partial is visible under a digest. An S3 object appears only when its PUT (or
  multipart upload) completes; a folder remote gets a temp file renamed into place.
  After an upload, ``push`` reads the object back and hashes it; one that does not hash
  to its digest is deleted and reported. ``pull`` hashes while it downloads into a temp
  file and installs the blob only if the digest matches; a corrupt remote blob is named
  and never installed.
* Nothing already stored is touched, except a local blob that is damaged, which ``pull``
  replaces with verified bytes.

Reading back is the simplest check that works on every backend; it costs one download
per uploaded blob (``bench/data.py --only remote`` prints the share of push time it
takes). S3's own SHA-256 checksums would avoid it for single-part uploads, but multipart
uploads only get a checksum of part checksums, so they are left for later.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.artifacts import BlobBackend, FsspecBackend, LocalBackend, backend_for
from loopml.artifacts._integrity import hash_stream, key_for
from loopml.errors import (
    IntegrityError,
    InvalidParameterError,
    LoopmlError,
    RemoteError,
    StorageError,
)

if TYPE_CHECKING:
    from loopml.artifacts import ArtifactStore
    from loopml.artifacts._s3 import Upload
    from loopml.config import Settings
    from loopml.tracking.client import Client

Progress = Callable[[int, int], None]
# Schemes whose first path component is a bucket that must exist before anything is stored.
_BUCKETS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}
NO_REMOTE = (
    'No remote configured: add\n  [remote]\n  url = "s3://bucket/prefix"   # or a folder path\n'
    "to loopml.toml (endpoint and credentials go in [remote.options]), or set LOOPML_REMOTE_URL."
)


@dataclass
class SyncReport:
    """What a ``push`` or ``pull`` moved (or, on a dry run, would move).

    Attributes:
        action: ``"push"`` or ``"pull"``.
        remote: The remote's URL.
        dry_run: True if nothing was transferred.
        transferred: (digest, size) of each blob sent or received (or that would be).
        skipped: (digest, size) of blobs already where they had to be.
        unavailable: (digest, size) of blobs ``push`` could not send: missing or damaged
            here (``loopml fsck`` lists them).
        failed: (digest, message) of blobs that could not be transferred or verified.
        not_started: (digest, size) of blobs left alone after repeated network failures.
    """

    action: str
    remote: str
    dry_run: bool
    transferred: list[tuple[str, int]] = field(default_factory=list)
    skipped: list[tuple[str, int]] = field(default_factory=list)
    unavailable: list[tuple[str, int]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    not_started: list[tuple[str, int]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """Bytes transferred (or, on a dry run, that would be)."""
        return sum(size for _, size in self.transferred)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_started

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "remote": self.remote,
            "dry_run": self.dry_run,
            "transferred": [{"digest": d, "size": s} for d, s in self.transferred],
            "in_place": len(self.skipped),
            "unavailable": [{"digest": d, "size": s} for d, s in self.unavailable],
            "errors": [{"digest": d, "error": m} for d, m in self.failed],
            "not_started": [{"digest": d, "size": s} for d, s in self.not_started],
            "bytes": self.bytes,
        }


# --- the remote --------------------------------------------------------------------------


def _endpoint(url: str, options: dict[str, Any]) -> str:
    client_kwargs = options.get("client_kwargs") or {}
    found = options.get("endpoint_url") or client_kwargs.get("endpoint_url")
    found = found or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if found:
        return f" at {found}"
    return " (AWS)" if url.startswith(("s3://", "s3a://")) else ""


def open_remote(settings: Settings, *, create: bool) -> BlobBackend:
    """The remote's backend, after one request that proves it is there and lets us in.

    Args:
        create: a folder remote may not exist yet (push creates it on its first
            write); for pull a missing folder is an error.

    Raises:
        RemoteError: no remote is configured, or it is unreachable, missing or refuses us.
    """
    url = settings.remote_url
    if not url:
        raise RemoteError(NO_REMOTE)
    options = dict(settings.remote_options)
    remote = backend_for(url, options)
    if isinstance(remote, LocalBackend):
        if not remote.root.is_dir() and not create:
            raise RemoteError(
                f"Remote folder {remote.root} does not exist. Check [remote] url in loopml.toml "
                "(is the volume mounted?), or run `loopml push` to create it."
            )
        return remote
    scheme, _, path = url.partition("://")
    bucket = path.split("/")[0]
    where = f"remote {url}{_endpoint(url, options)}"
    try:
        fs = remote.fs  # type: ignore[attr-defined]
        _quiet_cut_requests()
        fs.info(bucket)
    except FileNotFoundError as exc:
        if scheme.lower() in _BUCKETS:
            raise RemoteError(
                f"Bucket {bucket!r} of {where} does not exist (or these credentials cannot "
                f"see it). Create it (e.g. `aws s3 mb s3://{bucket}`) or fix [remote] url in "
                "loopml.toml."
            ) from exc
    except PermissionError as exc:
        raise RemoteError(
            f"The {where} refused the credentials: {exc}. Check AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or key/secret in [remote.options] of "
            "loopml.toml."
        ) from exc
    except LoopmlError as exc:
        raise RemoteError(f"Cannot open the {where}: {exc}") from exc
    except Exception as exc:
        raise RemoteError(
            f"Cannot reach the {where}: {type(exc).__name__}: {exc}. Check the network and "
            "endpoint_url in [remote.options] of loopml.toml, then retry."
        ) from exc
    return remote


def _quiet_cut_requests() -> None:
    """Keep aiohttp's leftover tasks of a cut request from printing tracebacks at exit.

    When a connection is reset mid-request, s3fs reports the failed request (we turn it
    into a RemoteError), but aiohttp's body-writer task also fails and asyncio logs it as
    "Task exception was never retrieved", with a traceback, when the task is collected.
    """
    try:
        from fsspec.asyn import get_loop
    except ImportError:
        return
    loop = get_loop()

    def handler(loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, ConnectionError) or type(exc).__module__.startswith("aiohttp"):
            return  # the request that owned it already failed and was reported
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


# --- running transfers side by side ----------------------------------------------------

# Outcomes of one blob's transfer, as the workers report them to the calling thread.
SENT, SKIPPED, UNAVAILABLE, FAILED, CUT = "sent", "skipped", "unavailable", "failed", "cut"
Outcome = tuple[str, str]
# After this many blobs in a row failed on the network, the remote is taken to be
# unreachable: the transfers still queued are not started (a rerun resumes them).
_GIVE_UP = 3


def _each(
    rows: list[tuple[str, int]],
    jobs: int,
    work: Callable[[str, int], Outcome],
    collect: Callable[[tuple[str, int], Outcome], bool],
) -> list[tuple[str, int]]:
    """Run ``work`` on each row, ``jobs`` at a time; return the rows never started.

    ``collect`` runs in the calling thread as each row finishes (so the report and the
    progress callback need no lock) and returns False to start nothing more.
    """
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    from loopml._signals import leave_signals_to_main_thread

    queue = iter(rows)
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(jobs, len(rows))),
        thread_name_prefix="loopml-sync",
        initializer=leave_signals_to_main_thread,
    )
    running: dict[Future[Outcome], tuple[str, int]] = {}
    going = True

    def start() -> None:
        row = next(queue, None)
        if row is not None:
            running[pool.submit(work, *row)] = row

    try:
        for _ in range(jobs):
            start()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                row = running.pop(future)
                going = collect(row, future.result()) and going
                if going:
                    start()
    except BaseException:
        # Ctrl-C or a bug: start nothing more; transfers in flight end on their own.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return list(queue)


def _run(
    report: SyncReport,
    rows: list[tuple[str, int]],
    jobs: int,
    work: Callable[[str, int], Outcome],
    on_progress: Progress | None,
) -> None:
    """Transfer ``rows`` with ``work`` into ``report``; raise if the transfer was cut."""
    total = sum(size for _, size in rows)
    moved = 0
    cut: list[str] = []
    streak = 0
    kinds = {
        SENT: report.transferred,
        SKIPPED: report.skipped,
        UNAVAILABLE: report.unavailable,
    }
    if on_progress is not None:
        on_progress(0, total)

    def collect(row: tuple[str, int], outcome: Outcome) -> bool:
        nonlocal moved, streak
        kind, message = outcome
        digest, size = row
        if kind in kinds:
            kinds[kind].append(row)
        else:
            report.failed.append((digest, message))
        if kind == CUT:
            cut.append(digest)
        streak = streak + 1 if kind == CUT else 0
        moved += size
        if on_progress is not None:
            on_progress(moved, total)
        return streak < _GIVE_UP

    if jobs < 1:
        raise InvalidParameterError(f"jobs: got {jobs!r}; expected an integer >= 1.")
    report.not_started = _each(rows, jobs, work, collect)
    for key in kinds.values():
        key.sort()
    report.failed.sort()
    if cut:
        raise _interrupted(report, cut)


def _interrupted(report: SyncReport, cut: list[str]) -> RemoteError:
    action = report.action
    n = len(cut)
    lines = [f"  {d}: {m}" for d, m in report.failed if d in set(cut[:10])]
    if n > 10:
        lines.append(f"  … and {n - 10} more (--json lists all)")
    sent = f"{len(report.transferred)} {'sent' if action == 'push' else 'received'}"
    if report.not_started:
        sent += f", {len(report.not_started)} not started after {_GIVE_UP} failures in a row"
    err = RemoteError(
        f"{action.capitalize()} {'to' if action == 'push' else 'from'} {report.remote} was "
        f"interrupted: {n} blob{'s' if n != 1 else ''} could not be transferred ({sent}, "
        f"{len(report.skipped)} already in place):\n" + "\n".join(lines) + "\nNothing partial "
        f"is stored under any digest; run `loopml {action}` again: it transfers only what is "
        "still missing."
    )
    err.report = report  # type: ignore[attr-defined]
    return err


# --- push --------------------------------------------------------------------------------


def _rows(client: Client) -> list[tuple[str, int]]:
    lineage = client.metadata.lineage
    found = lineage.find(sorted(lineage.all_digests()))
    return [(d, found[d].size) for d in sorted(found)]


def _upload(store: ArtifactStore, remote: BlobBackend, digest: str, replace: bool) -> str | None:
    """Send one blob and read it back; None if it arrived intact, else why not."""
    key = key_for(digest)
    path = store.local_path(digest)
    if isinstance(remote, LocalBackend):
        # A folder remote publishes by link/rename: give it a copy, never our own blob.
        import shutil

        tmp = remote.staging.new_path()
        try:
            try:
                shutil.copyfile(path, tmp)
            except OSError as exc:
                from loopml.artifacts.backend import storage_error

                raise storage_error("copy the blob to", tmp, exc) from exc
            remote.write(key, tmp, replace=replace)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        remote.write(key, path, replace=replace)
    location = f"{remote.uri}/{key}"
    try:
        with remote.read(key) as src:
            actual, _ = hash_stream(src)
    except FileNotFoundError:
        return f"{location} vanished right after its upload; run `loopml push` again."
    except LoopmlError:
        raise
    except Exception as exc:
        from loopml.artifacts.backend import storage_error

        raise storage_error("read back", location, exc) from exc
    if actual == digest:
        return None
    remote.delete(key)
    return f"{location} hashed to {actual} after upload and was deleted; run `loopml push` again."


def _leftovers(remote: BlobBackend) -> dict[str, list[Upload]]:
    """Incomplete multipart uploads under the remote's blobs, by key (S3 only).

    An earlier push that was cut may have left them (see ``artifacts/_s3.py``); the
    upload of the same key aborts them first. Listing them is housekeeping: if the
    server refuses it, ``loopml gc`` is left to clean up.
    """
    if not isinstance(remote, FsspecBackend):
        return {}
    found: dict[str, list[Upload]] = {}
    try:
        for upload in remote.uploads("objects/"):
            found.setdefault(upload.key, []).append(upload)
    except StorageError:
        return {}
    return found


def push(
    client: Client,
    *,
    dry_run: bool = False,
    jobs: int | None = None,
    on_progress: Progress | None = None,
) -> SyncReport:
    """Send every blob the metadata knows that the remote lacks; see the module doc.

    Args:
        jobs: Blobs sent at once (default: ``[remote] jobs`` in loopml.toml, else 8).
        on_progress: Called with (bytes done, bytes in all) as blobs finish.

    Raises:
        RemoteError: no remote is configured, it cannot be used, or the transfer was cut
            (the error's ``report`` says what did move).
    """
    client.open()
    remote = open_remote(client.settings, create=True)
    store = client.artifacts
    report = SyncReport("push", remote.uri, dry_run)
    leftovers = {} if dry_run else _leftovers(remote)

    def one(digest: str, size: int) -> Outcome:
        if not store.is_intact(digest, size):
            return UNAVAILABLE, ""
        key = key_for(digest)
        try:
            info = remote.info(key)
            if info is not None and info.size == size:
                return SKIPPED, ""
            if dry_run:
                return SENT, ""
            for upload in leftovers.get(key, []):
                remote.abort(upload)  # type: ignore[attr-defined]
            problem = _upload(store, remote, digest, replace=info is not None)
        except StorageError as exc:
            return CUT, str(exc)
        return (FAILED, problem) if problem is not None else (SENT, "")

    _run(report, _rows(client), jobs or client.settings.remote_jobs, one, on_progress)
    return report


# --- pull --------------------------------------------------------------------------------


def pull(
    client: Client,
    *,
    dry_run: bool = False,
    jobs: int | None = None,
    on_progress: Progress | None = None,
) -> SyncReport:
    """Fetch every blob the metadata knows that is missing or damaged here; see the module doc.

    A blob that is not on the remote, or is corrupt there, is reported in ``failed`` (by
    digest and location) and nothing is installed for it.

    Args:
        jobs: Blobs fetched at once (default: ``[remote] jobs`` in loopml.toml, else 8).
        on_progress: Called with (bytes done, bytes in all) as blobs finish.

    Raises:
        RemoteError: no remote is configured, it cannot be used, or the transfer was cut
            (the error's ``report`` says what did move).
    """
    client.open()
    remote = open_remote(client.settings, create=False)
    store = client.artifacts
    report = SyncReport("pull", remote.uri, dry_run)

    def one(digest: str, size: int) -> Outcome:
        if store.is_intact(digest, size):
            return SKIPPED, ""
        key = key_for(digest)
        location = f"{remote.uri}/{key}"
        try:
            if not dry_run:
                store.fetch(remote, digest)  # checks that the blob is there, then hashes it
            elif remote.info(key) is None:
                return FAILED, _not_there(location)
        except IntegrityError as exc:
            return FAILED, _corrupt_message(digest, location, exc)
        except StorageError as exc:
            return CUT, str(exc)
        return SENT, ""

    _run(report, _rows(client), jobs or client.settings.remote_jobs, one, on_progress)
    return report


def _not_there(location: str) -> str:
    return f"not on the remote: no blob at {location}. Run `loopml push` on a machine that has it."


def _corrupt_message(digest: str, location: str, exc: IntegrityError) -> str:
    if "is missing" in str(exc):
        return _not_there(location)
    return (
        f"corrupted on the remote: {location} does not hash to {digest}; it was not "
        "installed. Delete that object and run `loopml push` on a machine that has the blob "
        "to re-push it."
    )
