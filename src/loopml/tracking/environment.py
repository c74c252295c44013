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
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, timeout=10, check=False
        )
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


def packages() -> dict[str, str]:
    """Versions of the top-level modules this process has imported, by import name.

    Read from each module's ``__version__`` (falling back to the installed distribution of
    the same name), so nothing scans site-packages: ``importlib.metadata.
    packages_distributions()`` parses every distribution's RECORD file, 0.1-0.3 s per
    process, paid by every short ``python pipeline.py`` because ``Run.end`` waits for it.
    """
    from importlib import metadata

    found: dict[str, str] = {}
    for name in sorted(
        {m.partition(".")[0] for m in list(sys.modules)} - set(sys.stdlib_module_names)
    ):
        if name.startswith("_"):
            continue
        try:  # lazy or odd modules may raise anything from attribute access
            version = getattr(sys.modules.get(name), "__version__", None)
            if not isinstance(version, str):
                version = metadata.version(name)
        except Exception:
            continue
        found[name] = version
    return found


def capture(root: Path) -> dict[str, Any]:
    """Everything above in one dict; a part that fails is left out, the others are kept."""
    parts: dict[str, Any] = {
        "git": lambda: git_state(root),
        "python": platform.python_version,
        "implementation": platform.python_implementation,
        "platform": platform.platform,
        "host": socket.gethostname,
        "argv": lambda: list(sys.argv),
        "packages": packages,
    }
    found: dict[str, Any] = {}
    for key, read in parts.items():
        try:
            found[key] = read()
        except Exception:  # best effort: capture must never fail a run
            continue
    return found
