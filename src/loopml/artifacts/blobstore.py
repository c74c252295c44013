"""ArtifactStore: content-addressed blobs, written atomically and verified on every read.

A blob's key is the SHA-256 of its bytes: ``objects/<2 hex>/<62 hex>``. Every write goes
to a temp file first, is hashed, and is then published in one step, so no reader ever
sees a partial blob under a digest. Every read re-hashes (``_integrity.py``) before
handing anything back.

The store owns content addressing; *where* blobs live is one injected
:class:`~loopml.artifacts.backend.BlobBackend` (a local folder, or any fsspec URL: S3,
GCS …). A remote backend gets a local folder of verified copies in front of it, so
``local_path`` and repeat loads never download twice; that cache is the one place where
the two kinds differ.

Writing is two steps, ``stage`` (materialize to a temp file and hash it) then
``publish``, so a caller can claim the digest in the metadata store in between (gc
safety, see ``store/lineage.py``). ``put_value`` does both for standalone use.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml._crashpoints import crash_point
from loopml._process import identity, process_start
from loopml.artifacts._integrity import (
    DIGEST,
    check_digest,
    check_file,
    check_metadata,
    corrupt,
    download_verified,
    hash_file,
    hash_stream,
    is_sealed,
    key_for,
    memo_add,
    memo_hit,
    missing,
)
from loopml.artifacts._staging import discard, size_or_none
from loopml.artifacts.backend import BlobBackend, BlobInfo, LocalBackend, storage_error
from loopml.artifacts.materializers import (
    Materializer,
    MaterializerRegistry,
    VerifiedBlob,
    default_registry,
    file_identity,
    loading_verified,
    type_name,
)
from loopml.errors import (
    ConflictError,
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


@dataclass(slots=True)
class StagedBlob:
    """A hashed temp file waiting to be published under its digest (see ``stage``)."""

    path: Path
    digest: str
    size: int
    materializer: str
    type_name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    sealed: bool = False

    def discard(self) -> None:
        """Remove the temp file (after publishing, or to give up)."""
        discard(self.path)

    def stored(self) -> StoredArtifact:
        return StoredArtifact(
            self.digest, self.size, self.materializer, self.type_name, self.metadata
        )


_PARALLEL_FSYNC = 8 << 20


def _default_cache() -> Path:
    base = os.environ.get("LOOPML_CACHE_DIR")
    if base:
        return Path(base) / "blobs"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loopml" / "blobs"


def backend_for(uri: str, storage_options: Mapping[str, Any] | None = None) -> BlobBackend:
    """The backend for a location: a local folder, or the plugin registered for its scheme."""
    from loopml import plugins

    if "://" not in uri or uri.startswith("file://"):
        local = uri.removeprefix("file://")
        return LocalBackend(Path(os.path.abspath(os.path.expanduser(local))))
    scheme = uri.partition("://")[0].lower()
    name = scheme if scheme in plugins.names("backend") else "fsspec"
    cls = plugins.load("backend", name)
    return cls(uri, storage_options)  # type: ignore[no-any-return]


class ArtifactStore:
    """Content-addressed artifact storage over one blob backend.

    Args:
        backend: Where blobs live: a :class:`BlobBackend`, or a location (a folder,
            ``file:///…``, ``s3://bucket/prefix``, ``memory://name``) to build one for.
        cache_dir: Local folder for verified copies of remote blobs (remote backends only);
            defaults to ``$LOOPML_CACHE_DIR/blobs`` or ``~/.cache/loopml/blobs``.
        storage_options: Passed to fsspec, e.g. ``{"endpoint_url": "http://127.0.0.1:9000"}``.
        materializers: The registry that picks materializers (default: the process-wide one).

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
        backend: BlobBackend | str | os.PathLike[str],
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        materializers: MaterializerRegistry | None = None,
    ) -> None:
        if isinstance(backend, str | os.PathLike):
            backend = backend_for(os.fspath(backend), storage_options)
        self.backend: BlobBackend = backend
        self.uri = backend.uri
        self.materializers = materializers or default_registry
        if isinstance(backend, LocalBackend):
            self._local = backend  # local blobs are their own verified copies
        else:
            cache = Path(cache_dir) if cache_dir is not None else _default_cache()
            self._local = LocalBackend(cache, durable=False)
        self._remote = self._local is not backend

    @classmethod
    def from_uri(
        cls,
        uri: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        materializers: MaterializerRegistry | None = None,
    ) -> ArtifactStore:
        return cls(backend_for(uri, storage_options), materializers=materializers)

    def __repr__(self) -> str:
        return f"ArtifactStore({self.uri!r})"

    # --- writing --------------------------------------------------------------------

    def stage(self, value: Any, *, source: str | None = None) -> StagedBlob:
        """Materialize ``value`` (or a ``Path`` to a file/folder) into a hashed temp file.

        Raises:
            MaterializerError: No materializer for the type, or saving failed.
            StorageError: The disk refused the write.
        """
        if isinstance(value, bytes | bytearray | memoryview):
            return self._stage_bytes(value)
        if isinstance(value, Path):
            if value.is_file() or value.is_dir():
                name = "file" if value.is_file() else "folder.tar"
                return self._stage(self.materializers.named(name), value, type_name(type(value)))
            if value.exists() or value.is_symlink():
                raise InvalidParameterError(
                    f"Cannot store {value}: it is neither a regular file nor a folder (a broken "
                    "symlink, FIFO or device). Pass a file or a folder."
                )
            raise NotFoundError(
                f"Cannot store {value}: no file or folder exists there. Check the path."
            )
        materializer = self.materializers.for_value(value, source=source)
        return self._stage(materializer, value, type_name(type(value)))

    def _stage_bytes(self, data: bytes | bytearray | memoryview) -> StagedBlob:
        tmp = self._local.staging.new_path()
        total = memoryview(data).nbytes
        try:
            with open(tmp, "xb") as f:
                f.write(data)
        except OSError as exc:
            written = size_or_none(tmp)
            discard(tmp)
            raise storage_error("write the temp file", tmp, exc, written, total) from exc
        digest = hashlib.sha256(data).hexdigest()
        return StagedBlob(tmp, digest, memoryview(data).nbytes, "bytes", type_name(type(data)))

    def _stage(self, materializer: Materializer, value: Any, spelled: str) -> StagedBlob:
        tmp = self._local.staging.new_path()
        try:
            try:
                metadata = materializer.save(value, tmp)
            except LoopmlError:
                raise
            except OSError as exc:
                total = size_or_none(value) if isinstance(value, Path) and value.is_file() else None
                raise storage_error(
                    "write the temp file", tmp, exc, size_or_none(tmp), total
                ) from exc
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
            sealed = not self._remote and self._local.durable and big
            digest, size = hash_file(tmp, seal=(lambda: self._local.seal(tmp)) if sealed else None)
        except BaseException:
            discard(tmp)
            raise
        return StagedBlob(tmp, digest, size, materializer.name, spelled, metadata, sealed)

    def publish(self, staged: StagedBlob) -> bool:
        """Make the staged blob visible under its digest; True if it was written (not deduplicated).

        An existing blob under the digest is kept only if it is intact; a damaged one
        (truncated, or bytes that no longer hash to the digest) is replaced by the staged,
        verified bytes, so re-running a step heals a corrupted output.
        """
        crash_point("blob-written")
        key = key_for(staged.digest)
        existing = self.backend.info(key)
        if existing is not None and self._intact(key, staged.digest, existing, staged.size):
            if not self._remote:
                self._local.settle(key)  # the creator may not have fsynced its folder yet
            return False
        replace = existing is not None
        if self._remote:
            self.backend.write(key, staged.path, replace=replace)
            try:  # keep the verified bytes as a cache copy
                self._local.write(key, staged.path, replace=True)
            except StorageError:
                pass  # the upload succeeded; a full cache only costs a later download
        else:
            self._local.write(key, staged.path, sealed=staged.sealed, replace=replace)
            try:
                memo_add(os.stat(self._local.path(key)), staged.digest)
            except OSError:
                pass
        return True

    def _intact(self, key: str, digest: str, info: BlobInfo, size: int) -> bool:
        """Is the existing blob whole? Remote: its size. Local: size, then seal/memo/hash."""
        if info.size != size:
            return False
        if self._remote:
            return True
        try:
            check_file(self._local.path(key), digest, missing_ok=False)
            return True
        except IntegrityError:
            return False

    def put_value(self, value: Any, *, source: str | None = None) -> StoredArtifact:
        """Store ``value`` with the materializer registered for its type.

        Raises:
            MaterializerError: No materializer for the type, or saving failed.
            StorageError: The disk or remote store refused the write.
        """
        return self._put(self.stage(value, source=source))

    def put_bytes(self, data: bytes) -> StoredArtifact:
        """Store raw bytes; storing bytes already present writes nothing."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidParameterError(
                f"put_bytes() needs bytes; got {type(data).__name__}. Use put_value() for other values."
            )
        return self._put(self._stage_bytes(data))

    def put_file(self, path: str | os.PathLike[str]) -> StoredArtifact:
        """Store a file's raw bytes (``"file"``) or a folder as a deterministic tar (``"folder.tar"``).

        Raises:
            NotFoundError: Nothing exists at ``path``.
            InvalidParameterError: ``path`` is not a regular file or folder, or the folder
                holds a symlink pointing outside it.
        """
        return self._put(self.stage(Path(path)))

    def _put(self, staged: StagedBlob) -> StoredArtifact:
        try:
            self.publish(staged)
            return staged.stored()
        finally:
            staged.discard()

    # --- reading --------------------------------------------------------------------

    def get_value(
        self, digest: str, materializer: str, metadata: dict[str, Any] | None = None
    ) -> Any:
        """Load the value stored under ``digest`` after verifying the blob's hash.

        Materializers that *unpack* (files and folders) load as a read-only path, unpacked
        once per digest next to the store (``unpacked/<digest>/…``) and shared by every
        later load, so loading leaves nothing behind.

        Raises:
            InvalidParameterError: ``digest`` is not 64 lowercase hex characters.
            NotFoundError: No materializer is called ``materializer``.
            IntegrityError: The blob is missing or corrupt.
            MaterializerError: The materializer could not read the blob.
        """
        check_digest(digest)
        found = self.materializers.named(materializer)
        if callable(getattr(found, "unpack", None)):
            return self._unpacked(digest, found, metadata or {})
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

    def _unpacked(self, digest: str, materializer: Any, metadata: dict[str, Any]) -> Path:
        """The one entry (file or folder) ``materializer.unpack`` made for ``digest``."""
        root = self._local.root / "unpacked"
        folder = root / digest
        if not folder.is_dir():
            path, _ = self._verified_path(digest)
            part = root / f".{digest}.{_part_tag()}.part"
            try:
                materializer.unpack(path, part, dict(metadata))
                _read_only(part)
                os.rename(part, folder)
            except OSError as exc:
                if not folder.is_dir():  # unless another process won the same rename
                    raise storage_error(f"unpack artifact {digest} into", folder, exc) from exc
            finally:
                _remove_tree(part)
        entries = os.listdir(folder)
        if len(entries) != 1:
            raise IntegrityError(
                f"The unpacked copy of artifact {digest} at {folder} was changed (it holds "
                f"{len(entries)} entries). Delete that folder; the next load unpacks it again."
            )
        return folder / entries[0]

    def get_bytes(self, digest: str) -> bytes:
        """Return the blob's bytes, verified against ``digest``."""
        check_digest(digest)
        known: os.stat_result | None = None
        path = self._local.path(key_for(digest))
        if self._remote:
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

    def export(
        self,
        digest: str,
        materializer: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        force: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> Path:
        """Write the artifact where a user wants it and return that path.

        A ``"folder.tar"`` becomes the folder ``dest``; anything else is copied byte for
        byte to ``dest`` (or, when ``dest`` is a folder, into it, named after the original
        file or ``<digest><extension>``). The result appears under its name only when it is
        complete (written as a hidden ``.part`` first); ``.part`` debris left by a killed
        export is removed by the next export into the same folder.

        Raises:
            ConflictError: ``dest`` exists and ``force`` is false.
        """
        check_digest(digest)
        found = self.materializers.named(materializer)
        name = (metadata or {}).get("name")
        if dest is None:
            dest = Path(digest[:12] + found.extension)
        target = Path(dest)
        path, _ = self._verified_path(digest)
        if found.name == "folder.tar":
            return self._export_folder(digest, path, target, force)
        if target.is_dir():
            from loopml.artifacts.materializers.files import safe_name

            target = target / safe_name(name, f"{digest}{found.extension}")
        if (target.exists() or target.is_symlink()) and not force:
            raise ConflictError(
                f"Cannot export artifact {digest[:12]} to {target}: the file exists. Pass "
                "--force (force=True) to overwrite it, or choose another path."
            )
        _clean_parts(target.parent)
        part = target.with_name(f".{target.name}.{_part_tag()}.part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, part)
            os.chmod(part, 0o644)
            os.replace(part, target)  # never leave a half-copied export under its name
        except OSError as exc:
            raise storage_error(f"export artifact {digest} to", target, exc) from exc
        finally:
            discard(part)
        return target

    def _export_folder(self, digest: str, blob: Path, target: Path, force: bool) -> Path:
        from loopml.artifacts.safetar import safe_extract

        if target.exists() and not target.is_dir():
            raise InvalidParameterError(
                f"Cannot export folder artifact {digest[:12]} into {target}: it is a file. "
                "Pass a folder path (it is created if missing)."
            )
        occupied = target.is_dir() and any(target.iterdir())
        if occupied and not force:
            raise ConflictError(
                f"Cannot export folder artifact {digest[:12]} into {target}: the folder is not "
                "empty. Pass --force (force=True) to replace it, or choose another path."
            )
        _clean_parts(target.parent)
        part = target.with_name(f".{target.name}.{_part_tag()}.part")
        old = target.with_name(f".{target.name}.{_part_tag()}.old.part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            safe_extract(blob, part)
            if target.exists():
                os.rename(target, old)  # replaced only once the new folder is complete
            os.rename(part, target)
        except OSError as exc:
            raise storage_error(f"export artifact {digest} to", target, exc) from exc
        finally:
            _remove_tree(part)
            _remove_tree(old)
        return target

    def _verified_path(self, digest: str) -> tuple[Path, os.stat_result]:
        key = key_for(check_digest(digest))
        path = self._local.path(key)
        if not self._remote:
            st = check_file(path, digest, missing_ok=False)
            assert st is not None
            return path, st
        try:
            cached = check_file(path, digest, missing_ok=True)
            if cached is not None:
                return path, cached
        except IntegrityError:
            self._local.delete(key)  # a damaged cache copy: fetch the blob again
        return path, download_verified(self.backend, self._local, key, digest)

    # --- inspection and maintenance -------------------------------------------------

    @property
    def local_folder(self) -> Path:
        """The local folder of this store: its blobs, or its cache of a remote store's."""
        return Path(self._local.root)

    def exists(self, digest: str) -> bool:
        """True if a blob is stored under ``digest`` (without verifying it)."""
        return self.backend.exists(key_for(check_digest(digest)))

    def is_intact(self, digest: str, size: int) -> bool:
        """Cheap check that a stored blob can be trusted (the step cache uses it on a hit).

        Size must match; a local blob must also still carry the seal written when it was
        published (any later write changes its mtime) or pass this process's verified-stat
        memo; otherwise it is re-hashed once (and re-sealed when intact).
        """
        key = key_for(check_digest(digest))
        if self._remote:
            info = self.backend.info(key)
            return info is not None and info.size == size
        try:
            st = os.stat(self._local.path(key))
        except OSError:
            return False
        if st.st_size != size:
            return False
        if is_sealed(st) or memo_hit(st, digest):
            return True
        try:
            check_file(self._local.path(key), digest, missing_ok=False)
        except (IntegrityError, StorageError):
            return False
        return True

    def info(self, digest: str) -> BlobInfo | None:
        """Size and modification time of the stored blob, or None if it is absent."""
        return self.backend.info(key_for(check_digest(digest)))

    def verify(self, digest: str) -> None:
        """Re-hash the stored blob (the remote one for remote stores).

        Raises:
            IntegrityError: The blob is missing or does not hash to ``digest``.
        """
        key = key_for(check_digest(digest))
        if not self._remote:
            check_file(self._local.path(key), digest, missing_ok=False, memo=False)
            return
        location = self.blob_path(digest)
        try:
            with self.backend.read(key) as src:
                actual, _ = hash_stream(src)
        except FileNotFoundError:
            raise missing(digest, location) from None
        except LoopmlError:
            raise
        except Exception as exc:
            raise storage_error("verify", location, exc) from exc
        if actual != digest:
            raise corrupt(digest, location, actual)

    def restore_from_cache(self, digest: str) -> bool:
        """Upload a remote blob again from this machine's verified copy; False if there is none."""
        if not self._remote:
            return False
        key = key_for(check_digest(digest))
        try:
            if check_file(self._local.path(key), digest, missing_ok=True, memo=False) is None:
                return False
        except IntegrityError:
            self._local.delete(key)
            return False
        self.backend.write(key, self._local.path(key), replace=True)
        return True

    def fetch(self, source: BlobBackend, digest: str) -> None:
        """Install the blob ``digest`` from another backend (a remote), verified first.

        The bytes stream into a temp file while they are hashed and are published under
        the digest only if they hash to it; a damaged local blob is replaced.

        Raises:
            IntegrityError: ``source`` has no such blob, or its bytes hash to something else.
            StorageError: The transfer failed or ended early (nothing is installed).
        """
        key = key_for(check_digest(digest))
        download_verified(source, self._local, key, digest)
        if self._remote:
            self.backend.write(key, self._local.path(key), replace=True)

    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every blob stored (for fsck and gc)."""
        for key in self.backend.list("objects"):
            parts = key.split("/")
            if len(parts) == 3 and len(parts[1]) == 2 and DIGEST.fullmatch(parts[1] + parts[2]):
                yield parts[1] + parts[2]

    def delete(self, digest: str) -> None:
        """Delete the blob (and any cached or unpacked copy); deleting an absent blob is not an error."""
        key = key_for(check_digest(digest))
        self.backend.delete(key)
        if self._remote:
            self._local.delete(key)
        _remove_tree(self._local.root / "unpacked" / digest)

    def retire(self, digest: str) -> None:
        """Take a blob out of the store at once, cheaply (gc, inside its transaction).

        A local blob is renamed into ``trash/`` (a rename, not an unlink, so the database
        lock gc holds meanwhile is short); :meth:`empty_trash` deletes it afterwards. A
        remote blob is deleted.
        """
        key = key_for(check_digest(digest))
        _remove_tree(self._local.root / "unpacked" / digest)
        if self._remote:
            self.backend.delete(key)
            self._local.delete(key)
            return
        trash = self._local.root / "trash"
        try:
            trash.mkdir(exist_ok=True)
            os.rename(self._local.path(key), trash / f"{digest}.{_part_tag()}")
        except FileNotFoundError:
            pass  # already gone
        except OSError as exc:
            raise storage_error("retire the blob", self._local.path(key), exc) from exc

    def empty_trash(self) -> int:
        """Delete retired blobs; returns how many."""
        trash = self._local.root / "trash"
        removed = 0
        try:
            entries = list(os.scandir(trash))
        except OSError:
            return 0
        for entry in entries:
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                continue
        return removed

    def blob_path(self, digest: str) -> str:
        """Where the blob lives: a local path, or the remote URL."""
        key = key_for(check_digest(digest))
        return f"{self.backend.uri}/{key}" if self._remote else str(self._local.path(key))

    def clean_temp(self) -> int:
        """Remove temp files left by writers that are gone; return how many were removed."""
        return (
            self._local.staging.clean()
            + _clean_parts(self._local.root / "unpacked")
            + self.empty_trash()
        )

    def iter_temp(self) -> Iterator[str]:
        """Yield the temp files currently present (live writers' and dead ones')."""
        return (str(path) for path in self._local.staging)


# --- helpers for exports and unpacking --------------------------------------------------


def _part_tag() -> str:
    pid, start = identity()
    return f"{pid}-{start}-{os.urandom(6).hex()}"


def _clean_parts(folder: Path) -> int:
    """Remove ``.NAME.<pid>-<start>-<rand>[.old].part`` debris whose writer is gone."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".part")):
            continue
        tag = name.removesuffix(".part").removesuffix(".old").rpartition(".")[2]
        pid, _, rest = tag.partition("-")
        start = rest.partition("-")[0]
        if not pid.isdigit():
            continue
        alive = process_start(int(pid))
        if alive is not None and (alive == "" or alive == start):
            continue
        _remove_tree(Path(entry.path))
        removed += 1
    return removed


def _read_only(root: Path) -> None:
    """Make an unpacked tree read-only: it is shared by every load of its digest."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                mode = os.stat(full).st_mode
                os.chmod(full, stat.S_IMODE(mode) & ~0o222)


def _remove_tree(path: Path) -> None:
    """Delete a file or folder we own, read-only entries included; absent is fine."""
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_file() or path.is_symlink():
        discard(path)
        return

    def writable(fn: Any, p: str, _exc: Any) -> None:
        try:
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755)
            fn(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=writable)
