"""What a run records about where it ran: git commit/dirty/diff, Python, packages, host.

Capturing is done once per process and refreshed only when something changed, so
creating a run costs no subprocess and no thread (DESIGN.md §6: ≥ 2,000 runs/s):

- packages are re-read when ``sys.modules`` has grown (a step imported scikit-learn);
  a run's environment is re-checked when it ends, so imports inside steps are recorded;
- git state is re-read when ``.git/HEAD``, ``.git/index`` or a tracked file's stat
  changed, checked at most every ``GIT_RECHECK_S`` seconds;
- the first capture of a process runs on one shared background thread, so a short
  ``python pipeline.py`` does not wait for ``git`` before its first step.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from loopml.store.runs import EnvRow, environment_row

GIT_RECHECK_S = 0.5
_MAX_TRACKED = 20_000


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
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
    process.
    """
    found: dict[str, str] = {}
    for name in sorted(
        {m.partition(".")[0] for m in list(sys.modules)} - set(sys.stdlib_module_names)
    ):
        if name.startswith("_"):
            continue
        try:  # lazy or odd modules may raise anything from attribute access
            module = sys.modules.get(name)
            version = getattr(module, "__version__", None)
            if not isinstance(version, str):
                if getattr(module, "__file__", None) is None:
                    continue  # a built-in or namespace module: no distribution to ask
                # importlib.metadata costs ~30 ms to import: only when a module needs it.
                from importlib import metadata

                version = metadata.version(name)
        except Exception:
            continue
        found[name] = version
    return found


def _static() -> dict[str, Any]:
    parts: dict[str, Any] = {
        "python": platform.python_version,
        "implementation": platform.python_implementation,
        "platform": platform.platform,
        "host": socket.gethostname,
        "argv": lambda: list(sys.argv),
    }
    found: dict[str, Any] = {}
    for key, read in parts.items():
        try:
            found[key] = read()
        except Exception:  # best effort: capture must never fail a run
            continue
    return found


class _GitWatch:
    """Git state of one folder, re-read only when the repository's files changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state: dict[str, Any] | None = None
        self.stamp: tuple[Any, ...] | None = None
        self.checked = 0.0
        self.top: Path | None = None
        self.tracked: list[str] = []

    def _stamp(self) -> tuple[Any, ...]:
        if self.top is None:
            return ()
        parts: list[Any] = []
        for name in (".git/HEAD", ".git/index"):
            try:
                st = os.stat(self.top / name)
                parts.append((st.st_mtime_ns, st.st_size))
            except OSError:
                parts.append(None)
        for rel in self.tracked:
            try:
                st = os.stat(self.top / rel)
                parts.append((st.st_mtime_ns, st.st_size))
            except OSError:
                parts.append(None)
        return tuple(parts)

    def read(self) -> dict[str, Any]:
        now = time.monotonic()
        if self.state is not None and now - self.checked < GIT_RECHECK_S:
            return self.state
        self.checked = now
        if self.state is not None and self.stamp is not None and self._stamp() == self.stamp:
            return self.state
        if self.top is None:
            if self.state == {} and not (self.root / ".git").exists():
                return self.state  # still not a repository: no subprocess to find that out
            top = _git(self.root, "rev-parse", "--show-toplevel")
            if top is None:
                self.state, self.stamp = {}, None
                return self.state
            self.top = Path(top.strip())
            listed = _git(self.top, "ls-files", "-z") or ""
            self.tracked = [p for p in listed.split("\0") if p][:_MAX_TRACKED]
        stamp = self._stamp()
        self.state = git_state(self.root)
        self.stamp = stamp
        return self.state


class EnvironmentCache:
    """Per-process cache of the environment facts a run records (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._static: dict[str, Any] | None = None
        self._packages: dict[str, str] = {}
        self._modules_seen = -1
        self._row: EnvRow | None = None
        self._git: dict[Path, _GitWatch] = {}
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def _packages_now(self) -> dict[str, str]:
        if len(sys.modules) != self._modules_seen:
            self._modules_seen = len(sys.modules)
            self._packages = packages()
        return self._packages

    def capture(self, root: Path) -> tuple[EnvRow, dict[str, Any]]:
        """(environment row, git state) now; git ``{}`` outside a repository."""
        with self._lock:
            if self._static is None:
                self._static = _static()
            seen = self._modules_seen
            packages = self._packages_now()
            if self._row is None or seen != self._modules_seen:
                self._row = environment_row({**self._static, "packages": packages})
            env = self._row
            watch = self._git.get(root)
            if watch is None:
                watch = self._git[root] = _GitWatch(root)
            try:
                git = watch.read()
            except Exception:  # best effort: capture must never fail a run
                git = {}
        return env, git

    def peek(self, root: Path) -> tuple[EnvRow, dict[str, Any]] | None:
        """The capture if one is cheap now; otherwise start it in the background and return None."""
        if self._ready.is_set():
            return self.capture(root)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._warm, args=(root,), name="loopml-env", daemon=True
                )
                self._thread.start()
        return None

    def _warm(self, root: Path) -> None:
        from loopml._signals import leave_signals_to_main_thread

        leave_signals_to_main_thread()
        try:
            self.capture(root)
        finally:
            self._ready.set()

    def wait(self, timeout: float) -> bool:
        """Wait for the first background capture; False if it is still running."""
        if self._thread is None:
            return True
        return self._ready.wait(timeout)


environments = EnvironmentCache()
