"""Digests and verification: what a valid digest looks like, hashing, and the read check.

Every read path in the store goes through ``check_file`` (or hashes the bytes it read),
so a blob is never handed back unless it hashes to its digest. A per-process memo of
verified files, keyed by inode, size, mtime and ctime, keeps repeat reads cheap; any
later write to the file changes those and forces a re-hash.

Across processes, a local blob carries a *seal*: when it is published (and whenever it
is verified), its mtime is set to ``SEAL_NS``, a fixed instant in 2001. Any later write
to the file moves its mtime to "now", so ``is_sealed`` is a one-``stat`` proof that the
bytes were not rewritten since they were verified. It is what lets a step-cache hit trust
a blob without re-hashing it, and catch an edited or truncated one (damage that keeps
the mtime, such as bit rot, is what ``loopml fsck`` is for).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from loopml._signals import leave_signals_to_main_thread
from loopml.artifacts._staging import discard
from loopml.artifacts.backend import BlobBackend, LocalBackend, storage_error
from loopml.artifacts.materializers import file_identity
from loopml.artifacts.progress import advance
from loopml.errors import (
    IntegrityError,
    InvalidParameterError,
    LoopmlError,
    MaterializerError,
    StorageError,
)

CHUNK = 1 << 20
DIGEST = re.compile(r"[0-9a-f]{64}")
# Git's "racily clean" problem: a change within the same timestamp tick as the last one
# leaves mtime unchanged, so stat data is trusted only once it is clearly in the past.
_RACY_NS = 2_000_000_000
_MEMO_LIMIT = 1 << 16
SEAL_NS = 1_000_000_000 * 1_000_000_000
_verified: dict[tuple[int, int], tuple[str, int, int, int]] = {}


def check_digest(digest: object) -> str:
    """Return ``digest`` if it is 64 lowercase hex characters, else raise InvalidParameterError."""
    if isinstance(digest, str) and DIGEST.fullmatch(digest):
        return digest
    shown = repr(digest) if len(repr(digest)) <= 80 else repr(digest)[:77] + "..."
    raise InvalidParameterError(
        f"Invalid artifact digest {shown}: expected 64 lowercase hex characters (a SHA-256, "
        "as in StoredArtifact.digest). A digest is never a path."
    )


def key_for(digest: str) -> str:
    """Return the blob key of a (checked) digest: ``objects/<2 hex>/<62 hex>``."""
    return f"objects/{digest[:2]}/{digest[2:]}"


def hash_stream(f: IO[bytes]) -> tuple[str, int]:
    """Hash a stream in 1 MiB chunks into one reused buffer: no whole-file copy in memory."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    while n := f.readinto(buf):  # type: ignore[attr-defined]
        h.update(view[:n])
        size += n
        advance(n)  # a progress bar, when someone asked for one
    return h.hexdigest(), size


def hash_file(path: Path, *, seal: Callable[[], object] | None = None) -> tuple[str, int]:
    """Hash the file at ``path``; run ``seal`` (an fsync) in a thread meanwhile, if given."""
    failed: list[BaseException] = []

    def run_seal() -> None:
        leave_signals_to_main_thread()
        try:
            seal()  # type: ignore[misc]
        except BaseException as exc:  # re-raised in the calling thread below
            failed.append(exc)

    worker = threading.Thread(target=run_seal, name="loopml-fsync", daemon=True) if seal else None
    if worker is not None:
        worker.start()
    try:
        with open(path, "rb", buffering=0) as f:
            digest, size = hash_stream(f)
    except OSError as exc:
        raise storage_error("read back the temp file", path, exc) from exc
    finally:
        if worker is not None:
            worker.join()
    if failed:
        raise failed[0]
    return digest, size


def is_sealed(st: os.stat_result) -> bool:
    """True if the file still has the mtime set when it was last verified (see module doc)."""
    return st.st_mtime_ns == SEAL_NS


def seal(path: Path, st: os.stat_result) -> os.stat_result:
    """Set the seal on a verified blob (best effort: a foreign owner's file stays unsealed)."""
    try:
        os.utime(path, ns=(st.st_atime_ns, SEAL_NS))
        return os.stat(path)
    except OSError:
        return st


def download_verified(
    remote: BlobBackend, cache: LocalBackend, key: str, digest: str
) -> os.stat_result:
    """Download ``key`` into ``cache``, hashing while it streams; only a verified blob is kept.

    Raises:
        IntegrityError: The remote blob is missing or hashes to something else.
        StorageError: The transfer failed or ended early (nothing is cached).
    """
    location = f"{remote.uri}/{key}"
    info = remote.info(key)
    if info is None:
        raise missing(digest, location)
    tmp = cache.staging.new_path()
    size = 0
    h = hashlib.sha256()
    try:
        try:
            with remote.read(key) as src, open(tmp, "xb") as dst:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            raise missing(digest, location) from None
        except LoopmlError:
            raise
        except Exception as exc:
            raise storage_error("download", location, exc, size, info.size) from exc
        if size != info.size:
            raise StorageError(
                f"Download of {location} is incomplete: got {size:,} of {info.size:,} bytes. "
                "Retry; nothing was cached."
            )
        if h.hexdigest() != digest:
            raise corrupt(digest, location, h.hexdigest())
        cache.write(key, tmp, replace=True)
        discard(tmp)  # first: unlinking the temp name changes the blob's ctime
        try:
            return os.stat(cache.path(key))
        except OSError as exc:
            raise storage_error("read the cached copy", cache.path(key), exc) from exc
    finally:
        discard(tmp)


def memo_hit(st: os.stat_result, digest: str) -> bool:
    """True if this process verified this very file, unchanged since, as ``digest``."""
    return _verified.get((st.st_dev, st.st_ino)) == (
        digest,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )


def memo_add(st: os.stat_result, digest: str) -> None:
    """Remember that the file with stat ``st`` hashes to ``digest`` (unless it is racy)."""
    if time.time_ns() - st.st_mtime_ns < _RACY_NS:
        return
    if len(_verified) >= _MEMO_LIMIT:
        _verified.pop(next(iter(_verified)))
    _verified[(st.st_dev, st.st_ino)] = (digest, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def check_file(
    path: Path, digest: str, *, missing_ok: bool, memo: bool = True
) -> os.stat_result | None:
    """Re-hash the local file at ``path`` unless this process verified it unchanged.

    A file that hashes right is sealed (see module doc). ``memo=False`` always re-hashes
    (fsck).
    """
    try:
        with open(path, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            if memo and memo_hit(st, digest):
                return st
            actual, _ = hash_stream(f)
            after = os.fstat(f.fileno())
    except FileNotFoundError:
        if missing_ok:
            return None
        raise missing(digest, path) from None
    except OSError as exc:
        raise storage_error("read", path, exc) from exc
    if actual != digest:
        raise corrupt(digest, path, actual)
    if file_identity(after) != file_identity(st):
        return after
    if not is_sealed(after):
        after = seal(path, after)
    memo_add(after, digest)
    return after


def check_metadata(name: str, metadata: object) -> dict[str, Any]:
    """Return a materializer's metadata as plain JSON data, or raise MaterializerError."""
    if not isinstance(metadata, dict):
        raise MaterializerError(
            f"Materializer {name!r} returned {type(metadata).__name__} from save(); it must "
            "return a dict of JSON-able metadata."
        )
    try:
        return json.loads(json.dumps(metadata, allow_nan=False))  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise MaterializerError(
            f"Materializer {name!r} returned metadata that is not JSON-able: {exc}. Use str, "
            "int, float, bool, None, lists and str-keyed dicts (convert numpy numbers with int())."
        ) from exc


def missing(digest: str, where: object) -> IntegrityError:
    """The error for a blob that is not where its digest says."""
    return IntegrityError(
        f"Artifact {digest} is missing: no blob at {where}. Run `loopml fsck` to list damaged "
        "artifacts, and re-run the step that produced it to store it again."
    )


def corrupt(digest: str, where: object, actual: str) -> IntegrityError:
    """The error for a blob whose bytes hash to ``actual`` instead of ``digest``."""
    return IntegrityError(
        f"Artifact {digest} at {where} is corrupt: its content hashes to {actual}. Run "
        "`loopml fsck` to list damaged artifacts; re-run the step that produced it, or "
        "restore the blob from a backup."
    )
