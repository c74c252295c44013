"""What a run records about where it ran: git commit/dirty/diff, Python, packages, host."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None


def git_state(root: Path) -> dict[str, Any]:
    """``{"commit", "dirty", "diff"}`` of the repository holding ``root``, or {} outside git."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {}
    status = _git(root, "status", "--porcelain", "--untracked-files=no") or ""
    dirty = bool(status.strip())
    diff = _git(root, "diff", "HEAD", "--binary") if dirty else None
    return {"commit": commit.strip(), "dirty": dirty, "diff": diff}


_distributions: dict[str, list[str]] | None = None
_versions: dict[str, str | None] = {}


def packages() -> dict[str, str]:
    """Versions of the distributions whose top-level modules this process has imported.

    The module → distribution map and each version are read once per process: scanning
    installed metadata costs tens of milliseconds, too much to repeat for every run.
    """
    from importlib import metadata

    global _distributions
    if _distributions is None:
        _distributions = metadata.packages_distributions()
    top = {name.partition(".")[0] for name in list(sys.modules)}
    found: dict[str, str] = {}
    for module in sorted(top & set(_distributions)):
        for dist in _distributions[module]:
            if dist not in _versions:
                try:
                    _versions[dist] = metadata.version(dist)
                except metadata.PackageNotFoundError:
                    _versions[dist] = None
            version = _versions[dist]
            if version is not None:
                found[dist] = version
    return found


def capture(root: Path) -> dict[str, Any]:
    """Everything above in one dict (slow parts: git subprocesses, package metadata)."""
    return {
        "git": git_state(root),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "argv": list(sys.argv),
        "packages": packages(),
    }
