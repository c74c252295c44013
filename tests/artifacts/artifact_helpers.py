"""Small helpers shared by the artifact tests."""

from __future__ import annotations

import os
from pathlib import Path


def flip_byte(path: str | Path, offset: int = 0) -> None:
    """Flip one bit of one byte in place, as bit rot would (blobs are read-only)."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


def age(path: str | Path, seconds: float = 3600) -> None:
    """Move a file's mtime into the past, so stat data is old enough to memoize."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))
