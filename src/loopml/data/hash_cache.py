"""Digests of files this machine already hashed, so adding the same file again is instant.

A file's digest is remembered with its stat: absolute path, size, modification and change
times in nanoseconds, and inode. A later lookup is a hit only when all of them are equal;
any write to the file changes its change time (which no user tool can set back), so a hit
means the bytes are the ones hashed. git's index and DVC's state database do the same.

The cache is a small SQLite file next to the local blobs (machine-local, like the blobs'
local copies). It is only a cache: any error reading or writing it is ignored and the
file is simply hashed again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

FILENAME = "hash-cache.db"


def _key(path: Path) -> tuple[str, int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


class HashCache:
    """``get(path)`` / ``put(path, digest)`` over a SQLite file in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.file = Path(folder) / FILENAME

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.file, timeout=5)
        con.execute(
            "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, "
            "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, digest TEXT)"
        )
        return con

    def get(self, path: Path) -> str | None:
        key = _key(path)
        if key is None or not self.file.exists():
            return None
        with contextlib.suppress(sqlite3.Error, OSError):
            con = self._connect()
            try:
                row = con.execute(
                    "SELECT size, mtime_ns, ctime_ns, inode, digest FROM files WHERE path = ?",
                    (key[0],),
                ).fetchone()
            finally:
                con.close()
            if row is not None and tuple(row[:4]) == key[1:]:
                return str(row[4])
        return None

    def put(self, path: Path, digest: str) -> None:
        key = _key(path)
        if key is None:
            return
        with contextlib.suppress(sqlite3.Error, OSError):
            con = self._connect()
            try:
                with con:
                    con.execute(
                        "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", (*key, digest)
                    )
            finally:
                con.close()
