"""Extract an untrusted tar so that nothing is ever written outside the destination.

Why hand-written: tarfile's ``"data"`` filter decides safety by resolving paths with
``os.path.realpath``, and what that does depends on the Python patch release. Before
3.11.13, 3.12.11 and 3.13.4, a chain of symlinks longer than ``PATH_MAX`` made realpath
give up silently, so a later member was written outside the destination (CVE-2025-4517).
Here safety never depends on tarfile or on resolving paths: every member is checked
lexically against the whole member list before anything is written, and the writing walks
directory file descriptors with ``O_NOFOLLOW`` and creates files with ``O_EXCL``, so even a
symlink planted on disk between the check and the write cannot redirect it. POSIX only.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import re
import shutil
import stat
import tarfile
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loopml.artifacts.backend import storage_error
from loopml.errors import InvalidParameterError

_CHUNK = 1 << 20  # copy buffer: files are streamed, never held whole in memory
_SHOWN = 5  # problems listed in one message; the count says how many more there are
_DRIVE = re.compile(r"[A-Za-z]:")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CORRUPT = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError)
_FIX = (
    "Nothing was extracted. The archive may be hostile: rebuild it from a plain folder "
    "(files, folders and symlinks that stay inside it), or do not use it."
)
_LIMIT_FIX = "Nothing was extracted. If the archive is trusted, raise the limit and retry."


@dataclass(frozen=True, slots=True)
class _Entry:
    """A checked member; for a file or hard link, the file holding its bytes and its mode."""

    info: tarfile.TarInfo
    parts: tuple[str, ...]
    source: tuple[str, ...] = ()
    mode: int = 0o644


def safe_extract(
    archive: Path, dest: Path, *, max_bytes: int | None = None, max_members: int = 1_000_000
) -> int:
    """Extract the tar at ``archive`` (any compression) into the empty folder ``dest``.

    Args:
        archive: The tar file; tarfile detects gzip, bz2 and xz compression.
        dest: An empty or not-yet-existing folder; it is created when missing.
        max_bytes: Refuse the archive when its files hold more bytes than this in total.
        max_members: Refuse the archive when it has more members than this.

    Returns:
        The number of members extracted.

    Raises:
        InvalidParameterError: ``dest`` is not an empty folder, the archive is corrupt, or a
            member is unsafe; nothing is left in ``dest``.
        StorageError: Reading the archive or writing ``dest`` failed; nothing is left behind.
    """
    created: Path | None = None
    dest_fd = -1
    try:
        if os.path.lexists(dest) and (not dest.is_dir() or any(dest.iterdir())):
            raise _taken(archive, dest)
        with tarfile.open(archive, "r:*") as tar:
            entries = _check(archive, dest, tar, max_bytes, max_members)
            created = next((p for p in (*reversed(dest.parents), dest) if not p.exists()), None)
            dest.mkdir(parents=True, exist_ok=True)
            dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            if os.listdir(dest_fd):  # someone else wrote there meanwhile: not ours to clean
                os.close(dest_fd)
                dest_fd, created = -1, None
                raise _taken(archive, dest)
            _write(tar, entries, dest_fd)
            return len(entries)
    except BaseException as exc:
        _clean(dest_fd, created)
        if isinstance(exc, _CORRUPT):
            raise InvalidParameterError(
                f"Archive {str(archive)!r}: got unreadable tar data ({exc}); expected a valid, "
                "complete tar file. Export the artifact again or check the file is not truncated."
            ) from exc
        if isinstance(exc, OSError):
            raise storage_error(f"extract {archive} into", dest, exc) from exc
        raise
    finally:
        if dest_fd >= 0:
            os.close(dest_fd)


def _taken(archive: Path, dest: Path) -> InvalidParameterError:
    return InvalidParameterError(
        f"Destination {str(dest)!r} for {archive}: got a non-empty folder or not a folder; "
        "expected an empty or missing folder. Pick a new folder, or empty this one."
    )


def _fold(parts: tuple[str, ...] | list[str]) -> str:
    # Case- and normalisation-insensitive key for symlink lookups: on macOS or Windows volumes
    # 'A' and 'a' are one entry, so a target through 'A' really passes through the link 'a'.
    return unicodedata.normalize("NFC", "/".join(parts)).casefold()


def _split(path: str, *, up: bool = False) -> tuple[str, ...] | str:
    """Return the components of a relative POSIX path (``..`` only if ``up``), or its fault."""
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if not path or "\x00" in path:
        return "an empty path" if not path else "a NUL byte"
    if "\\" in path:
        # On Windows a backslash separates folders (and '\\\\server' is a UNC path); we can't
        # tell that from a literal character, so it is refused everywhere.
        return "a backslash"
    if path.startswith("/") or _DRIVE.match(path):
        return "an absolute path" if path.startswith("/") else "a drive letter"
    return "a '..' component" if ".." in parts and not up else parts


def _check(
    archive: Path, dest: Path, tar: tarfile.TarFile, max_bytes: int | None, max_members: int
) -> list[_Entry]:
    """Validate every member; return them in archive order, or raise listing all problems."""
    entries: list[_Entry] = []
    problems: list[tuple[int, str, str]] = []  # (index, member name, "got ...; expected ...")
    seen: set[tuple[str, ...]] = set()
    files: dict[tuple[str, ...], _Entry] = {}  # regular files and hard links, by path
    symlinks: set[str] = set()
    total = 0
    for index, info in enumerate(tar):
        if index >= max_members:
            got = f"got member number {index + 1:,}; expected max_members={max_members:,}"
            raise _refuse(archive, dest, [(index, info.name, got)], _LIMIT_FIX)
        parts = _split(info.name)
        if isinstance(parts, str):
            problems.append((index, info.name, f"got {parts}; expected a path inside"))
            entries.append(_Entry(info, ()))  # refused already; the second pass skips it
            continue
        if not parts and not info.isdir():
            problems.append((index, info.name, "got the folder itself; expected a file's path"))
        elif parts in seen:
            problems.append((index, info.name, "got a path seen before; expected unique paths"))
        seen.add(parts)
        entry = _Entry(info, parts)
        if info.isreg():
            # Only the executable bit survives: no setuid/setgid/sticky, never world-writable.
            entry = files[parts] = _Entry(info, parts, parts, 0o755 if info.mode & 0o111 else 0o644)
            total += info.size
        elif info.islnk():
            target = _split(info.linkname)
            first = files.get(target) if isinstance(target, tuple) else None
            if first is None:
                got = f"got hard link target {info.linkname!r}"
                problems.append((index, info.name, f"{got}; expected an earlier file member"))
            else:
                entry = files[parts] = _Entry(info, parts, first.source, first.mode)
                total += files[first.source].info.size  # it is copied, so its bytes count again
        elif info.issym():
            symlinks.add(_fold(parts))
        elif not info.isdir():
            what = "FIFO" if info.isfifo() else "device" if info.isdev() else f"type {info.type!r}"
            problems.append((index, info.name, f"got a {what}; expected a file, folder or link"))
        if max_bytes is not None and total > max_bytes:
            got = f"got {total:,} bytes of files so far; expected max_bytes={max_bytes:,}"
            raise _refuse(archive, dest, [(index, info.name, got)], _LIMIT_FIX)
        entries.append(entry)
    for index, entry in enumerate(entries):
        name = entry.info.name
        for cut in range(1, len(entry.parts)):
            parent = entry.parts[:cut]
            kind = "symlink" if _fold(parent) in symlinks else "file" if parent in files else ""
            if kind:
                got = f"got a path through the {kind} member {'/'.join(parent)!r}"
                problems.append((index, name, f"{got}; expected only folders above"))
                break
        why = entry.info.issym() and _link_problem(entry.parts, entry.info.linkname, symlinks)
        if why and entry.parts:  # no parts: the name itself was already refused
            got = f"got symlink target {entry.info.linkname!r}, which {why}"
            problems.append((index, name, f"{got}; expected a target inside"))
    if problems:
        raise _refuse(archive, dest, sorted(problems), _FIX)
    return entries


def _link_problem(parts: tuple[str, ...], target: str, symlinks: set[str]) -> str:
    """Return why a symlink at ``parts`` pointing to ``target`` could leave dest, or ''."""
    steps = _split(target, up=True)
    if isinstance(steps, str):
        return f"has {steps}"
    # The walk is lexical, and that is exact only because no step may go *through* another
    # symlink member: then every folder passed is a real folder made from the archive (a
    # member's parents are never links, and dest starts empty), so '..' is its lexical
    # parent. The last step may be a link, but that link is itself checked to stay inside.
    here = list(parts[:-1])
    for i, step in enumerate(steps):
        if step == "..":
            if not here:
                return "climbs above the destination"
            here.pop()
            continue
        here.append(step)
        if i < len(steps) - 1 and _fold(here) in symlinks:
            return f"passes through the symlink member {'/'.join(here)!r}"
    return ""


def _refuse(
    archive: Path, dest: Path, problems: list[tuple[int, str, str]], fix: str
) -> InvalidParameterError:
    count = len(problems)
    shown = "; ".join(f"Member {name!r}: {text}" for _, name, text in problems[:_SHOWN])
    more = f"; and {count - _SHOWN} more" if count > _SHOWN else ""
    noun = "problem" if count == 1 else "problems"
    return InvalidParameterError(
        f"Refused to extract {archive} into {dest}: {count} {noun}. {shown}{more}. {fix}"
    )


def _open_dir(root_fd: int, parts: tuple[str, ...]) -> int:
    """Open (creating as needed) the folder ``parts`` under ``root_fd``, never following links."""
    fd = os.dup(root_fd)
    for part in parts:
        try:
            # Made already for an earlier member? Fine: O_NOFOLLOW refuses a planted symlink.
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


@contextlib.contextmanager
def _parent(root_fd: int, parts: tuple[str, ...]) -> Iterator[int]:
    fd = _open_dir(root_fd, parts[:-1])
    try:
        yield fd
    finally:
        os.close(fd)


def _open_in(root_fd: int, parts: tuple[str, ...], flags: int, mode: int = 0o644) -> int:
    with _parent(root_fd, parts) as parent:
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)


def _copy(src: IO[bytes] | None, root_fd: int, entry: _Entry) -> None:
    assert src is not None  # a regular member always has a data stream
    new = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    with src, open(_open_in(root_fd, entry.parts, new, entry.mode), "wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)


def _write(tar: tarfile.TarFile, entries: list[_Entry], dest_fd: int) -> None:
    for entry in entries:
        if entry.info.isdir():
            os.close(_open_dir(dest_fd, entry.parts))
        elif entry.info.isreg():
            _copy(tar.extractfile(entry.info), dest_fd, entry)
        elif entry.info.islnk():
            # A copy, not os.link: that works on every filesystem, an edit of one file never
            # changes another, and _check counted the copy's bytes against max_bytes.
            with open(_open_in(dest_fd, entry.source, os.O_RDONLY), "rb") as src:
                _copy(src, dest_fd, entry)
    # Symlinks last, so no file or folder of this archive is ever created through one.
    for entry in (e for e in entries if e.info.issym()):
        steps = _split(entry.info.linkname, up=True)
        assert isinstance(steps, tuple)  # _check refused every other target
        target = "/".join(steps)  # exactly the steps that _check walked
        with _parent(dest_fd, entry.parts) as parent:
            os.symlink(target or ".", entry.parts[-1], dir_fd=parent)


def _clean(dest_fd: int, created: Path | None) -> None:
    """Best effort: remove what we wrote inside dest, and dest (or its parents) if we made it."""
    try:
        for name in os.listdir(dest_fd) if dest_fd >= 0 else []:
            # lstat by dir_fd: a symlink is unlinked, never followed into a folder elsewhere.
            if stat.S_ISDIR(os.stat(name, dir_fd=dest_fd, follow_symlinks=False).st_mode):
                shutil.rmtree(name, dir_fd=dest_fd)
            else:
                os.unlink(name, dir_fd=dest_fd)
        if created is not None:
            shutil.rmtree(created)
    except OSError:
        pass  # the original error matters more than a leftover we could not remove
