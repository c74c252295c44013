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
* Blobs move several at once (``[remote] jobs``, ``transfers.py``); one that fails
  is named with its cause and does not stop the others. On S3, a multipart upload that
  an earlier cut push left at a key is aborted before that key is uploaded again
  (``artifacts/_s3.py``); ``loopml gc`` aborts any other once it is past the grace period.

Reading back is the simplest check that works on every backend; it costs one download
per uploaded blob (``bench/data.py --only remote`` prints the share of push time it
takes). S3's own SHA-256 checksums would avoid it for single-part uploads, but multipart
uploads only get a checksum of part checksums, so they are left for later.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from loopml.artifacts import BlobBackend, FsspecBackend, LocalBackend, backend_for
from loopml.artifacts._integrity import hash_stream, key_for
from loopml.errors import IntegrityError, LoopmlError, RemoteError, StorageError
from loopml.tracking.transfers import (
    CUT,
    FAILED,
    SENT,
    SKIPPED,
    UNAVAILABLE,
    Outcome,
    Progress,
    SyncReport,
    run,
)

if TYPE_CHECKING:
    from loopml.artifacts import ArtifactStore
    from loopml.artifacts._s3 import Upload
    from loopml.config import Settings
    from loopml.tracking.client import Client

# Schemes whose first path component is a bucket that must exist before anything is stored.
_BUCKETS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}
NO_REMOTE = (
    'No remote configured: add\n  [remote]\n  url = "s3://bucket/prefix"   # or a folder path\n'
    "to loopml.toml (endpoint and credentials go in [remote.options]), or set LOOPML_REMOTE_URL."
)


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
                if isinstance(remote, FsspecBackend):
                    remote.abort(upload)
            problem = _upload(store, remote, digest, replace=info is not None)
        except StorageError as exc:
            return CUT, str(exc)
        return (FAILED, problem) if problem is not None else (SENT, "")

    run(report, _rows(client), jobs or client.settings.remote_jobs, one, on_progress)
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

    run(report, _rows(client), jobs or client.settings.remote_jobs, one, on_progress)
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
