"""Where blobs live: a local folder or any fsspec filesystem, behind one small protocol.

`ArtifactStore` (``blobstore.py``) owns content addressing, hashing and verification. A
backend only moves *complete* files to and from keys such as ``objects/ab/cdef…``, so
every backend gets the same guarantee for free: a key appears only once its bytes are
all there. Temp files are staged on local disk by ``_staging.StagingArea``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from loopml.artifacts._staging import StagingArea
from loopml.errors import LoopmlError, StorageError

if TYPE_CHECKING:
    from loopml.artifacts._s3 import Upload

# Filesystems without hard links answer os.link with one of these; we then fall back
# to "check, then rename", which can only ever replace a key with identical bytes.
_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV}
_CAUSES = {
    errno.ENOSPC: "disk full (ENOSPC)",
    errno.EDQUOT: "disk quota exceeded (EDQUOT)",
    errno.EFBIG: "file too large for the file-size limit (EFBIG)",
    errno.EIO: "I/O error (EIO)",
    errno.EROFS: "read-only file system (EROFS)",
    errno.EACCES: "permission denied (EACCES)",
    errno.EPERM: "operation not permitted (EPERM)",
}


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """Size and modification time of a stored blob (``modified`` is None when unknown)."""

    size: int
    modified: float | None


class BlobBackend(Protocol):
    """The six operations the artifact store needs from a place that holds blobs.

    Keys are relative, ``/``-separated paths chosen by the store. ``write`` publishes a
    complete local file under a key; it replaces an existing key's content only when
    asked (``replace=True``: the store found that content damaged).
    """

    uri: str

    def exists(self, key: str) -> bool: ...

    def info(self, key: str) -> BlobInfo | None: ...

    def read(self, key: str) -> IO[bytes]: ...

    def write(self, key: str, src: Path, *, replace: bool = False) -> bool: ...

    def list(self, prefix: str) -> Iterator[str]: ...

    def delete(self, key: str) -> None: ...


def describe_os_error(exc: BaseException) -> str:
    """Return a short human cause for an OS error, e.g. ``"disk full (ENOSPC)"``."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code in _CAUSES:
        return _CAUSES[code]
    return str(exc) or type(exc).__name__


def storage_error(
    action: str,
    target: object,
    exc: BaseException,
    nbytes: int | None = None,
    total: int | None = None,
) -> StorageError:
    """Build the `StorageError` for a failed blob write or read: path, bytes, cause, fix."""
    done = f" after {nbytes:,} bytes" if nbytes is not None else ""
    if total is not None:
        done += f" of {total:,}" if nbytes is not None else f" ({total:,} bytes)"
    code = getattr(exc, "errno", None)
    cause = describe_os_error(exc)
    # shutil.copyfile names the source as ``filename`` and the destination as ``filename2``:
    # the write that failed is the destination's.
    filename = getattr(exc, "filename2", None) or getattr(exc, "filename", None)
    if code in _CAUSES and filename and str(filename) != str(target):
        cause = f"{cause} on {filename}"
    if code in (errno.ENOSPC, errno.EDQUOT):
        fix = "Free some disk space or point the artifact store at a bigger volume, then retry."
    elif code == errno.EFBIG:
        fix = "Raise the file-size limit (`ulimit -f`) or store smaller artifacts."
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "Make the store's folder writable by this user, then retry."
    else:
        fix = "Check the disk or the connection, then retry."
    err = StorageError(f"Could not {action} {target}{done}: {cause}. {fix}")
    err.errno = code if isinstance(code, int) else None
    return err


# --- local folder ---------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(path: Path, durable: bool) -> None:
    """Create ``path`` and its missing parents, fsyncing each parent that gained an entry."""
    if path.is_dir():
        return
    _make_dirs(path.parent, durable)
    try:
        os.mkdir(path)
    except FileExistsError:
        return
    if durable:
        _fsync_dir(path.parent)


class LocalBackend:
    """Blobs as read-only files under a local folder, published with fsync + link/rename.

    fsspec offers no fsync, so this backend does the durable-write dance itself with
    ``os``: ``fsync(tmp)`` → ``link``/``rename`` into place → ``fsync(dir)``. The temp file
    must live on the same filesystem (``staging`` is ``<root>/tmp``). ``durable=False``
    skips the fsyncs; the store uses it only for its download cache, whose files are
    re-verified before use anyway.
    """

    def __init__(self, root: Path | str, *, durable: bool = True) -> None:
        root = Path(root)
        self.root = root
        self.uri = str(root)
        self.durable = durable
        self.staging = StagingArea(root / "tmp")

    def path(self, key: str) -> Path:
        """Return the local path of ``key`` (which may not exist)."""
        return self.root / key

    def exists(self, key: str) -> bool:
        return os.path.isfile(self.root / key)

    def info(self, key: str) -> BlobInfo | None:
        """Size, and when the blob was published (its ctime: its mtime carries the seal)."""
        try:
            st = os.stat(self.root / key)
        except FileNotFoundError:
            return None
        return BlobInfo(size=st.st_size, modified=st.st_ctime)

    def read(self, key: str) -> IO[bytes]:
        return open(self.root / key, "rb", buffering=0)

    def seal(self, src: Path) -> int:
        """Make the temp file ``src`` read-only and durable (fsync); return its size.

        This is the first half of ``write``; the store may run it in a thread while it
        hashes the same file, then call ``write(..., sealed=True)``.
        """
        from loopml.artifacts._integrity import SEAL_NS

        try:
            fd = os.open(src, os.O_RDONLY)
            try:
                os.fchmod(fd, 0o444)  # blobs are immutable; catch accidental edits early
                # The seal: any later write moves mtime off it (see _integrity.py).
                os.utime(fd, ns=(SEAL_NS, SEAL_NS))
                if self.durable:
                    os.fsync(fd)  # a failed fsync is a failed write: never retried
                return os.fstat(fd).st_size
            finally:
                os.close(fd)
        except OSError as exc:
            raise storage_error("fsync the temp file", src, exc) from exc

    def write(self, key: str, src: Path, *, sealed: bool = False, replace: bool = False) -> bool:
        """Publish the complete file ``src`` under ``key``; False if the key already held it.

        With ``replace``, or when the key's file has the wrong size (a truncated blob), the
        key is healed by an atomic replace with our verified bytes; otherwise an existing
        key is left untouched.
        """
        dest = self.root / key
        nbytes = self.seal(src) if not sealed else None
        try:
            nbytes = nbytes if nbytes is not None else os.path.getsize(src)
            _make_dirs(dest.parent, self.durable)
            created = True
            try:
                os.link(src, dest)  # unlike rename, link never replaces an existing key
            except FileExistsError:
                created = replace or os.stat(dest).st_size != nbytes
            except OSError as exc:
                if exc.errno not in _NO_HARDLINKS:
                    raise
                created = replace or not os.path.exists(dest) or os.stat(dest).st_size != nbytes
            if created and not os.path.samefile(src, dest):
                os.replace(src, dest)
            # Also on de-duplication: the writer that created the key may not have
            # fsynced its folder yet. If this fsync fails, the blob's bytes are complete
            # but its name may not survive a crash: report a failed write, but leave the
            # key for concurrent writers who may already have de-duplicated against it.
            if self.durable:
                _fsync_dir(dest.parent)
        except OSError as exc:
            raise storage_error("store the blob at", dest, exc, nbytes) from exc
        return created

    def settle(self, key: str) -> None:
        """fsync the folder holding ``key``, whose entry another writer may have just made."""
        if self.durable:
            try:
                _fsync_dir((self.root / key).parent)
            except OSError as exc:
                raise storage_error("fsync the folder of", self.root / key, exc) from exc

    def list(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        for folder, _dirs, files in os.walk(base):
            rel = Path(folder).relative_to(self.root).as_posix()
            for name in files:
                yield f"{rel}/{name}"

    def delete(self, key: str) -> None:
        try:
            os.unlink(self.root / key)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise storage_error("delete the blob at", self.root / key, exc) from exc


# --- any fsspec filesystem ------------------------------------------------------------


# Object stores whose fsspec filesystem caches listings: another machine's writes and
# deletes would otherwise go unseen (a deleted blob "exists", so a re-put is skipped).
_LISTING_CACHES = {"s3", "s3a", "gs", "gcs"}
# botocore retries connection errors, throttling and 5xx; s3fs retries a response cut
# mid-body. With botocore's legacy default (5 attempts, long backoff) a dead network took
# about 10 s to report; AWS's "standard" mode with 3 attempts in all takes 1-2 s. Options
# that set config_kwargs["retries"] themselves are left alone.
_BOTOCORE_RETRIES = {"mode": "standard", "total_max_attempts": 3}


def _open_options(uri: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options loopml opens a filesystem with: the user's, plus these defaults.

    Each backend gets its own filesystem instance (fsspec otherwise shares one per set of
    options, listings cache included), and object stores never cache listings.
    """
    options = {"skip_instance_cache": True, **(storage_options or {})}
    scheme = uri.partition("://")[0].lower()
    if scheme in _LISTING_CACHES:
        options.setdefault("use_listings_cache", False)
    if scheme in ("s3", "s3a"):
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("retries", dict(_BOTOCORE_RETRIES))
        options["config_kwargs"] = config
    return options


class FsspecBackend:
    """Blobs on any fsspec filesystem (``s3://``, ``gs://``, ``memory://`` …).

    ``write`` uploads a complete local file with one ``put`` to the final key: on S3 a
    key appears only when its PUT or multipart upload completes, so no reader can see
    half a blob. Every call asks the store itself (no cached listings, see
    :func:`_open_options`). fsspec is imported on first use, never at import time.
    """

    def __init__(self, uri: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.uri = uri.rstrip("/")
        self._options = _open_options(self.uri, storage_options)
        #: S3: part sizes and leftover multipart uploads are handled (``_s3.py``).
        self.s3 = self.uri.partition("://")[0].lower() in ("s3", "s3a")
        self._fs: Any = None
        self._root = ""

    @property
    def fs(self) -> Any:
        """The fsspec filesystem, created on first use."""
        if self._fs is None:
            try:
                from fsspec.core import url_to_fs
            except ImportError as exc:
                raise StorageError(
                    f"Artifact store {self.uri!r} needs fsspec: pip install fsspec"
                ) from exc
            try:
                self._fs, root = url_to_fs(self.uri, **self._options)
            except Exception as exc:
                raise storage_error("open the artifact store", self.uri, exc) from exc
            self._root = str(root).rstrip("/")
        return self._fs

    def _full(self, key: str) -> str:
        if self._fs is None:
            self.fs  # noqa: B018 - creating the filesystem also sets self._root
        return f"{self._root}/{key}"

    def exists(self, key: str) -> bool:
        try:
            return bool(self.fs.exists(self._full(key)))
        except LoopmlError:
            raise
        except Exception as exc:
            raise storage_error("check", f"{self.uri}/{key}", exc) from exc

    def info(self, key: str) -> BlobInfo | None:
        try:
            found = self.fs.info(self._full(key))
        except FileNotFoundError:
            return None
        except LoopmlError:
            raise
        except Exception as exc:
            raise storage_error("inspect", f"{self.uri}/{key}", exc) from exc
        from datetime import datetime

        modified = None
        for name in ("mtime", "LastModified", "modified", "created"):
            value = found.get(name)
            if isinstance(value, datetime):
                modified = value.timestamp()
                break
            if isinstance(value, int | float):
                modified = float(value)
                break
        return BlobInfo(size=int(found.get("size") or 0), modified=modified)

    def read(self, key: str) -> IO[bytes]:
        try:
            return self.fs.open(self._full(key), "rb")  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise
        except LoopmlError:
            raise
        except Exception as exc:
            raise storage_error("read", f"{self.uri}/{key}", exc) from exc

    def write(self, key: str, src: Path, *, replace: bool = False) -> bool:
        target = f"{self.uri}/{key}"
        nbytes = None
        try:
            nbytes = os.path.getsize(src)
            full = self._full(key)
            # Optional S3 extra (If-None-Match: *) is not used: s3fs does not expose it
            # for put_file, and content addressing makes a racing duplicate harmless.
            if not replace and self.fs.exists(full):
                return False
            if self.s3:
                from loopml.artifacts._s3 import put_options

                self.fs.put_file(str(src), full, **put_options())
            else:
                self.fs.put_file(str(src), full)
            uploaded = self.fs.info(full).get("size")
        except LoopmlError:
            raise
        except Exception as exc:
            raise storage_error("upload the blob to", target, exc, None, nbytes) from exc
        if uploaded is not None and int(uploaded) != nbytes:
            self.delete(key)
            raise StorageError(
                f"Upload of {target} is incomplete: {uploaded} of {nbytes:,} bytes arrived. "
                "Retry the write."
            )
        return True

    def list(self, prefix: str) -> Iterator[str]:
        base = self._full(prefix)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return
        except LoopmlError:
            raise
        except Exception as exc:
            raise storage_error("list", f"{self.uri}/{prefix}", exc) from exc
        head = f"{self._root}/"
        for path in sorted(str(p) for p in found):
            if not self._root:
                yield path.lstrip("/")
            elif path.startswith(head):
                yield path[len(head) :]

    def delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._full(key))
        except FileNotFoundError:
            pass
        except LoopmlError:
            raise
        except Exception as exc:
            raise storage_error("delete", f"{self.uri}/{key}", exc) from exc

    def uploads(self, prefix: str) -> tuple[Upload, ...]:
        """Incomplete multipart uploads under ``prefix`` (none off S3)."""
        if not self.s3:
            return ()
        from loopml.artifacts._s3 import list_uploads

        try:
            return list_uploads(self.fs, self._full("").rstrip("/"), prefix)
        except LoopmlError:
            raise
        except Exception as exc:
            raise storage_error(
                "list the multipart uploads under", f"{self.uri}/{prefix}", exc
            ) from exc

    def abort(self, upload: Upload) -> None:
        """Abort an incomplete multipart upload (see ``uploads``)."""
        from loopml.artifacts._s3 import abort_upload

        try:
            abort_upload(self.fs, self._full("").rstrip("/"), upload)
        except LoopmlError:
            raise
        except Exception as exc:
            raise storage_error(
                f"abort multipart upload {upload.upload_id} of", f"{self.uri}/{upload.key}", exc
            ) from exc
