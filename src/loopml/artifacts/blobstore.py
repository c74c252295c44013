"""ArtifactStore: content-addressed blobs, written atomically and verified on every read.

A blob's key is the SHA-256 of its bytes: ``objects/<2 hex>/<62 hex>``. Every write goes
to a temp file first, is hashed, and is then published in one step, so no reader ever
sees a partial blob under a digest. Every read re-hashes (``_integrity.py``) before
handing anything back. Remote stores (any fsspec URL) keep a local cache of verified
blobs, so ``local_path`` and repeat loads do not download twice.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopml._crashpoints import crash_point
from loopml.artifacts._integrity import (
    DIGEST,
    check_digest,
    check_file,
    check_metadata,
    corrupt,
    download_verified,
    hash_file,
    hash_stream,
    key_for,
    memo_add,
    memo_hit,
    missing,
)
from loopml.artifacts._staging import discard, size_or_none
from loopml.artifacts.backend import BlobInfo, FsspecBackend, LocalBackend, storage_error
from loopml.artifacts.materializers import (
    Materializer,
    VerifiedBlob,
    file_identity,
    loading_verified,
    materializer_for,
    materializer_named,
    type_name,
)
from loopml.errors import (
    IntegrityError,
    InvalidParameterError,
    LoopmlError,
    MaterializerError,
    NotFoundError,
    StorageError,
)


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """What the store knows about a blob it just wrote.

    Attributes:
        digest: Lowercase hex SHA-256 of the blob's bytes.
        size: Size of the blob in bytes.
        materializer: Stable materializer name, e.g. ``"pandas.parquet"``.
        type_name: ``module.QualName`` of the stored value's type.
        metadata: JSON-able facts from the materializer (rows, schema, shape …).
    """

    digest: str
    size: int
    materializer: str
    type_name: str
    metadata: dict[str, Any]


_PARALLEL_FSYNC = 8 << 20


def _default_cache() -> Path:
    base = os.environ.get("LOOPML_CACHE_DIR")
    if base:
        return Path(base) / "blobs"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loopml" / "blobs"


class ArtifactStore:
    """Content-addressed artifact storage on a local folder or any fsspec URL.

    Args:
        uri: A local folder (``.loopml/artifacts``, ``file:///…``) or an fsspec URL
            (``s3://bucket/prefix``, ``memory://name``).
        cache_dir: Local folder for verified copies of remote blobs (remote stores only);
            defaults to ``$LOOPML_CACHE_DIR/blobs`` or ``~/.cache/loopml/blobs``.
        storage_options: Passed to fsspec, e.g. ``{"endpoint_url": "http://127.0.0.1:9000"}``.

    The constructor does no I/O; folders are created on the first write.

    Example:
        >>> import tempfile
        >>> store = ArtifactStore(tempfile.mkdtemp())
        >>> stored = store.put_value({"alpha": 0.5})
        >>> stored.materializer, store.get_value(stored.digest, stored.materializer)
        ('json', {'alpha': 0.5})
    """

    def __init__(
        self,
        uri: str | os.PathLike[str],
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        text = os.fspath(uri)
        self.uri = text
        self._remote: FsspecBackend | None = None
        if "://" not in text or text.startswith("file://"):
            local = text.removeprefix("file://")
            self._local = LocalBackend(Path(os.path.abspath(os.path.expanduser(local))))
        else:
            self._remote = FsspecBackend(text, storage_options)
            cache = Path(cache_dir) if cache_dir is not None else _default_cache()
            self._local = LocalBackend(cache, durable=False)

    def __repr__(self) -> str:
        return f"ArtifactStore({self.uri!r})"

    # --- writing --------------------------------------------------------------------

    def put_value(self, value: Any, *, source: str | None = None) -> StoredArtifact:
        """Store ``value`` with the materializer registered for its type.

        Args:
            value: Any value a materializer accepts (see ``materializer_for``).
            source: What produced it, e.g. ``"step 'train'"``, for error messages.

        Raises:
            MaterializerError: No materializer for the type, or saving failed.
            StorageError: The disk or remote store refused the write.
        """
        materializer = materializer_for(value, source=source)
        return self._save(materializer, value, type_name(type(value)))

    def put_bytes(self, data: bytes) -> StoredArtifact:
        """Store raw bytes; storing bytes already present writes nothing."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidParameterError(
                f"put_bytes() needs bytes; got {type(data).__name__}. Use put_value() for other values."
            )
        digest = hashlib.sha256(data).hexdigest()
        size = memoryview(data).nbytes
        info = (self._remote or self._local).info(key_for(digest))
        if info is not None and info.size == size and self._remote is None:
            self._local.settle(key_for(digest))
        if info is None or info.size != size:  # absent, or truncated: (re)write it
            tmp = self._local.staging.new_path()
            try:
                try:
                    with open(tmp, "xb") as f:
                        f.write(data)
                except OSError as exc:
                    raise storage_error("write the temp file", tmp, exc, size_or_none(tmp)) from exc
                self._publish(tmp, digest)
            finally:
                discard(tmp)
        return StoredArtifact(digest, size, "bytes", type_name(type(data)), {})

    def put_file(self, path: str | os.PathLike[str]) -> StoredArtifact:
        """Store a file's raw bytes (``"file"``) or a folder as a deterministic tar (``"folder.tar"``).

        Raises:
            NotFoundError: Nothing exists at ``path``.
            InvalidParameterError: ``path`` is not a regular file or folder, or the folder
                holds a symlink pointing outside it.
        """
        target = Path(path)
        if target.is_file() or target.is_dir():
            name = "file" if target.is_file() else "folder.tar"
            return self._save(materializer_named(name), target, type_name(type(target)))
        if target.exists() or target.is_symlink():
            raise InvalidParameterError(
                f"Cannot store {target}: it is neither a regular file nor a folder (a broken "
                "symlink, FIFO or device). Pass a file or a folder."
            )
        raise NotFoundError(
            f"Cannot store {target}: no file or folder exists there. Check the path."
        )

    def _save(self, materializer: Materializer, value: Any, spelled: str) -> StoredArtifact:
        tmp = self._local.staging.new_path()
        try:
            try:
                metadata = materializer.save(value, tmp)
            except LoopmlError:
                raise
            except OSError as exc:
                raise storage_error("write the temp file", tmp, exc, size_or_none(tmp)) from exc
            except Exception as exc:
                raise MaterializerError(
                    f"Materializer {materializer.name!r} could not save a value of type "
                    f"{spelled!r}: {type(exc).__name__}: {exc}"
                ) from exc
            if not tmp.is_file():
                raise MaterializerError(
                    f"Materializer {materializer.name!r} did not write a file at {tmp}; save() "
                    "must write exactly one file at the path it is given."
                )
            metadata = check_metadata(materializer.name, metadata)
            # fsync costs about as much as hashing and both release the GIL, so a big
            # local blob is fsynced in a thread while it is hashed.
            big = (size_or_none(tmp) or 0) >= _PARALLEL_FSYNC
            sealed = self._remote is None and self._local.durable and big
            digest, size = hash_file(tmp, seal=(lambda: self._local.seal(tmp)) if sealed else None)
            self._publish(tmp, digest, sealed=sealed)
            return StoredArtifact(digest, size, materializer.name, spelled, metadata)
        finally:
            discard(tmp)

    def _publish(self, tmp: Path, digest: str, *, sealed: bool = False) -> None:
        crash_point("blob-written")
        key = key_for(digest)
        if self._remote is None:
            self._local.write(key, tmp, sealed=sealed)
            return
        self._remote.write(key, tmp)
        try:
            self._local.write(key, tmp)  # keep the verified bytes as a cache copy
        except StorageError:
            pass  # the upload succeeded; a full cache only costs a later download

    # --- reading --------------------------------------------------------------------

    def get_value(
        self, digest: str, materializer: str, metadata: dict[str, Any] | None = None
    ) -> Any:
        """Load the value stored under ``digest`` after verifying the blob's hash.

        Raises:
            InvalidParameterError: ``digest`` is not 64 lowercase hex characters.
            NotFoundError: No materializer is called ``materializer``.
            IntegrityError: The blob is missing or corrupt.
            MaterializerError: The materializer could not read the blob.
        """
        check_digest(digest)
        found = materializer_named(materializer)
        path, st = self._verified_path(digest)
        blob = VerifiedBlob(str(path), digest, file_identity(st))
        try:
            with loading_verified(blob):
                return found.load(path, dict(metadata or {}))
        except LoopmlError:
            raise
        except Exception as exc:
            raise MaterializerError(
                f"Materializer {materializer!r} could not load artifact {digest} from {path}: "
                f"{type(exc).__name__}: {exc}. Check that it was stored with {materializer!r}."
            ) from exc

    def get_bytes(self, digest: str) -> bytes:
        """Return the blob's bytes, verified against ``digest``."""
        check_digest(digest)
        known: os.stat_result | None = None
        path = self._local.path(key_for(digest))
        if self._remote is not None:
            path, known = self._verified_path(digest)
        try:
            with open(path, "rb", buffering=0) as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            raise missing(digest, path) from None
        except OSError as exc:
            raise storage_error("read", path, exc) from exc
        if (known is not None and file_identity(known) == file_identity(st)) or memo_hit(
            st, digest
        ):
            return data
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise corrupt(digest, path, actual)
        memo_add(st, digest)
        return data

    def local_path(self, digest: str) -> Path:
        """Return a verified local file holding the blob (downloaded first if remote).

        The file is read-only and belongs to the store: copy it before changing it.
        """
        return self._verified_path(digest)[0]

    def export(self, digest: str, materializer: str, dest: str | os.PathLike[str]) -> Path:
        """Write the artifact where a user wants it and return that path.

        A ``"folder.tar"`` is extracted into ``dest`` with tarfile's ``"data"`` filter;
        anything else is copied byte for byte to ``dest`` (or, when ``dest`` is a folder,
        to ``dest/<digest><extension>``).
        """
        check_digest(digest)
        found = materializer_named(materializer)
        path, _ = self._verified_path(digest)
        target = Path(dest)
        if found.name == "folder.tar":
            from loopml.artifacts.materializers.files import extract_tar

            if target.exists() and not target.is_dir():
                raise InvalidParameterError(
                    f"Cannot export folder artifact {digest} into {target}: it is a file. "
                    "Pass a folder path (it is created if missing)."
                )
            try:
                extract_tar(path, target)
            except OSError as exc:
                raise storage_error(f"export artifact {digest} to", target, exc) from exc
            return target
        if target.is_dir():
            target = target / f"{digest}{found.extension}"
        part = target.with_name(f".{target.name}.{os.urandom(16).hex()}.part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, part)
            os.replace(part, target)  # never leave a half-copied export under its name
        except OSError as exc:
            raise storage_error(f"export artifact {digest} to", target, exc) from exc
        finally:
            discard(part)
        return target

    def _verified_path(self, digest: str) -> tuple[Path, os.stat_result]:
        key = key_for(check_digest(digest))
        path = self._local.path(key)
        if self._remote is None:
            st = check_file(path, digest, missing_ok=False)
            assert st is not None
            return path, st
        try:
            cached = check_file(path, digest, missing_ok=True)
            if cached is not None:
                return path, cached
        except IntegrityError:
            self._local.delete(key)  # a damaged cache copy: fetch the blob again
        assert self._remote is not None
        return path, download_verified(self._remote, self._local, key, digest)

    # --- inspection and maintenance -------------------------------------------------

    def exists(self, digest: str) -> bool:
        """True if a blob is stored under ``digest`` (without verifying it)."""
        return (self._remote or self._local).exists(key_for(check_digest(digest)))

    def info(self, digest: str) -> BlobInfo | None:
        """Size and modification time of the stored blob, or None if it is absent."""
        return (self._remote or self._local).info(key_for(check_digest(digest)))

    def verify(self, digest: str) -> None:
        """Re-hash the stored blob (the remote one for remote stores).

        Raises:
            IntegrityError: The blob is missing or does not hash to ``digest``.
        """
        key = key_for(check_digest(digest))
        if self._remote is None:
            check_file(self._local.path(key), digest, missing_ok=False)
            return
        location = self.blob_path(digest)
        try:
            with self._remote.read(key) as src:
                actual, _ = hash_stream(src)
        except FileNotFoundError:
            raise missing(digest, location) from None
        except LoopmlError:
            raise
        except Exception as exc:
            raise storage_error("verify", location, exc) from exc
        if actual != digest:
            raise corrupt(digest, location, actual)

    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every blob stored (for fsck and gc)."""
        for key in (self._remote or self._local).list("objects"):
            parts = key.split("/")
            if len(parts) == 3 and len(parts[1]) == 2 and DIGEST.fullmatch(parts[1] + parts[2]):
                yield parts[1] + parts[2]

    def delete(self, digest: str) -> None:
        """Delete the blob (and any cached copy); deleting an absent blob is not an error."""
        key = key_for(check_digest(digest))
        if self._remote is not None:
            self._remote.delete(key)
        self._local.delete(key)

    def blob_path(self, digest: str) -> str:
        """Where the blob lives: a local path, or the remote URL."""
        key = key_for(check_digest(digest))
        return (
            f"{self._remote.uri}/{key}" if self._remote is not None else str(self._local.path(key))
        )

    def clean_temp(self) -> int:
        """Remove temp files left by writers that are gone; return how many were removed."""
        return self._local.staging.clean()

    def iter_temp(self) -> Iterator[str]:
        """Yield the temp files currently present (live writers' and dead ones')."""
        return (str(path) for path in self._local.staging)
