"""SQLite file facts the engine needs: the file system holding the store, free bytes, WAL."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any


def filesystem_type(path: Path) -> str:
    """The mount type holding ``path`` (longest matching mount point in /proc/mounts)."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    best, kind = "", ""
    target = str(path.resolve())
    for line in lines:
        parts = line.split()
        inside = len(parts) >= 3 and (
            target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")
        )
        if inside and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind


def free_bytes(path: Path | None) -> int:
    if path is None:
        return -1
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return -1


def enable_wal(conn: Any, busy_timeout_s: float) -> None:
    """Switch to WAL, waiting out other openers: the switch needs an exclusive lock, and
    SQLite answers "database is locked" at once instead of calling the busy handler when
    many processes open a new store together (R04)."""
    deadline = time.monotonic() + busy_timeout_s
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
            time.sleep(delay)  # back-off between attempts on a held lock
            delay = min(delay * 2, 0.05)
