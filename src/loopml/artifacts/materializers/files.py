"""A path as an artifact: a file's raw bytes, or a folder as a deterministic tar.

The tar holds entries in sorted order with mtime 0, uid/gid 0 and no owner names, so the
same folder content always gives the same bytes and digest. Symlinks are kept only when
they point inside the folder (stored relative); one pointing outside is refused, as are
FIFOs, sockets and devices. Extraction goes through ``safetar.safe_extract``, which checks
every member itself instead of trusting tarfile's version-dependent ``"data"`` filter.

Both materializers *unpack*: the artifact store unpacks a digest once into
``unpacked/<digest>/`` and hands every later load the same read-only path.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from loopml.artifacts import progress
from loopml.errors import InvalidParameterError

_COPY_BUFFER = 1 << 20


def _copy_reporting(source: Path, dest: Path) -> None:
    """``shutil.copyfile``, in 16 MiB ``sendfile`` steps that each report their bytes."""
    with open(source, "rb") as fin, open(dest, "xb") as fout:
        size = os.fstat(fin.fileno()).st_size
        offset = 0
        while offset < size:
            sent = os.sendfile(fout.fileno(), fin.fileno(), offset, min(16 << 20, size - offset))
            if sent == 0:  # the file shrank while being read
                break
            offset += sent
            progress.advance(sent)


def safe_name(name: object, default: str) -> str:
    """A stored file name reduced to one safe path component (never a directory)."""
    # The name comes back from the metadata store: never let it pick a directory.
    text = Path(str(name)).name if name else ""
    return text if text not in ("", ".", "..") else default


class FileMaterializer:
    """A ``pathlib.Path`` to a file ↔ the file's bytes; loads as a file with its original name."""

    name = "file"
    extension = ""

    def problem(self, value: Any) -> str | None:
        return None if Path(value).is_file() else f"{value} is not a file"

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        if progress.active():
            _copy_reporting(Path(value), path)
        else:
            shutil.copyfile(value, path)
        return {"name": Path(value).name}

    def unpack(self, blob: Path, folder: Path, metadata: dict[str, Any]) -> Path:
        """Write the file into the empty ``folder`` under its original name."""
        target = folder / safe_name(metadata.get("name"), "artifact")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(blob, target)
        os.chmod(target, 0o444)
        return target

    def load(self, path: Path, metadata: dict[str, Any]) -> Path:
        """A private copy in a new temp folder (the artifact store shares one via ``unpack``)."""
        return self.unpack(path, Path(tempfile.mkdtemp(prefix="loopml-file-")), metadata)


class FolderMaterializer:
    """A ``pathlib.Path`` to a folder ↔ a deterministic tar; loads into a fresh temp folder."""

    name = "folder.tar"
    extension = ".tar"

    def problem(self, value: Any) -> str | None:
        return None if Path(value).is_dir() else f"{value} is not a folder"

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        files, total = write_tar(Path(value), path)
        return {"name": Path(value).name, "files": files, "bytes": total}

    def unpack(self, blob: Path, folder: Path, metadata: dict[str, Any]) -> Path:
        """Extract the folder into ``folder`` under its original name."""
        target = folder / safe_name(metadata.get("name"), "folder")
        extract_tar(blob, target)
        return target

    def load(self, path: Path, metadata: dict[str, Any]) -> Path:
        """A private copy in a new temp folder (the artifact store shares one via ``unpack``)."""
        return self.unpack(path, Path(tempfile.mkdtemp(prefix="loopml-folder-")), metadata)


def _entries(root: Path, rel: Path = Path()) -> list[Path]:
    found: list[Path] = []
    for name in sorted(os.listdir(root / rel)):
        child = rel / name
        found.append(child)
        if stat.S_ISDIR(os.lstat(root / child).st_mode):
            found.extend(_entries(root, child))
    return found


def write_tar(folder: Path, dest: Path) -> tuple[int, int]:
    """Write ``folder`` as a deterministic tar at ``dest``; return (files, content bytes).

    Raises:
        InvalidParameterError: A symlink points outside the folder, or an entry is not a
            regular file, folder or symlink.
    """
    root = Path(os.path.realpath(folder))
    files = total = 0
    with (
        open(dest, "wb") as raw,
        tarfile.TarFile(
            fileobj=raw,
            mode="w",
            format=tarfile.PAX_FORMAT,
            encoding="utf-8",
            copybufsize=_COPY_BUFFER,
        ) as tar,
    ):
        for rel in _entries(root):
            full = root / rel
            st = os.lstat(full)
            info = tarfile.TarInfo(rel.as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if stat.S_ISDIR(st.st_mode):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.size, info.mode = st.st_size, 0o755 if st.st_mode & 0o111 else 0o644
                with open(full, "rb") as f:
                    tar.addfile(info, f)
                files, total = files + 1, total + st.st_size
            elif stat.S_ISLNK(st.st_mode):
                info.type, info.mode = tarfile.SYMTYPE, 0o777
                info.linkname = _inside_link(folder, root, rel)
                tar.addfile(info)
            else:
                raise InvalidParameterError(
                    f"Cannot store folder {folder}: {rel.as_posix()!r} is a {_kind(st.st_mode)}. "
                    "Only files, folders and symlinks inside the folder can be stored; move it out."
                )
    return files, total


def _inside_link(folder: Path, root: Path, rel: Path) -> str:
    target = os.readlink(root / rel)
    resolved = os.path.realpath(root / rel)
    if resolved != str(root) and not resolved.startswith(str(root) + os.sep):
        raise InvalidParameterError(
            f"Cannot store folder {folder}: the symlink {rel.as_posix()!r} points to {target!r}, "
            "outside the folder. Replace the link with a copy of its target, or remove it."
        )
    # Stored relative so it still points inside wherever the folder is extracted.
    return os.path.relpath(resolved, root / rel.parent)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file"


def extract_tar(blob: Path, dest: Path) -> None:
    """Extract the tar at ``blob`` into the new or empty folder ``dest``.

    Raises:
        InvalidParameterError: A member would escape ``dest`` or is not plain data.
    """
    from loopml.artifacts.safetar import safe_extract

    safe_extract(blob, dest)
