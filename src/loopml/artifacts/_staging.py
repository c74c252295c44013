"""The staging area: local temp files named after their writer, and their clean-up.

Every blob is first written to ``<pid>.<process start time>.<uuid>.tmp`` in a staging
folder on the same filesystem as its final place. A crashed writer leaves its temp file
behind; ``StagingArea.clean`` removes it once the writer is gone, telling a live writer
from a new process that reuses its pid by the process start time (checking "the pid is
alive" alone would keep orphans forever after pid reuse, or delete a live writer's file).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from loopml._process import identity, process_start
from loopml.errors import StorageError

_TEMP_NAME = re.compile(r"(\d+)\.(\d+)\.([0-9a-f]{32})\.tmp")


class StagingArea:
    """A local folder of temp files named ``<pid>.<start time>.<uuid>.tmp`` by their writer."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._ready = False

    def new_path(self) -> Path:
        """Return a fresh temp path (the folder is created on first use)."""
        if not self._ready:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"Could not create the temp folder {self.folder}: {exc.strerror or exc}. "
                    "Make the store's folder writable by this user, then retry."
                ) from exc
            self._ready = True
        pid, start = identity()
        return self.folder / f"{pid}.{start}.{os.urandom(16).hex()}.tmp"

    def __iter__(self) -> Iterator[Path]:
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_file(follow_symlinks=False):
                yield Path(entry.path)

    def clean(self) -> int:
        """Remove temp files whose writer is gone (dead, or its pid reused); keep the rest.

        Files that do not follow the naming scheme are left alone: we cannot tell who
        owns them.
        """
        removed = 0
        for path in self:
            match = _TEMP_NAME.fullmatch(path.name)
            if match is None:
                continue
            alive = process_start(int(match[1]))
            if alive is not None and (alive == "" or match[2] == "0" or alive == match[2]):
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # another cleaner got there first
            removed += 1
        return removed


def discard(path: Path) -> None:
    """Remove a temp file if it is still there."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # a leftover temp file is reclaimed later by clean_temp()


def size_or_none(path: Path) -> int | None:
    """Return the file's size, or None if it cannot be read (for error messages)."""
    try:
        return path.stat().st_size
    except OSError:
        return None
