"""Helpers shared by the CLI lifecycle tests: a tiny project, JSON output, folder listings, mounts.

Mounting needs root (the CI containers run as root); ``tmpfs`` unmounts in a ``finally``
so a failed test never leaves a mount behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cli_runner import run_cli

# Empty values make loopml fall back to loopml.toml, whatever the caller's environment holds.
ENV = {"LOOPML_STORE_URI": "", "LOOPML_ARTIFACTS_URI": "", "LOOPML_HEARTBEAT_SECONDS": "0.5"}

PIPELINES = '''
from __future__ import annotations

from loopml import pipeline, step


@step
def make(n: int) -> list[int]:
    return list(range(n))


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@pipeline
def small(n: int = 3, label: str = "x"):
    """Two steps: make a list, then sum it."""
    return total(make(n))
'''


def write_pipelines(project: Path, extra: str = "") -> None:
    """``pipelines.py`` with the ``small`` pipeline (and ``extra`` source appended)."""
    (project / "pipelines.py").write_text(PIPELINES + extra)


def cli(project: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``loopml ARGS`` in ``project``; it must succeed. Returns the finished process."""
    result = run_cli(*args, cwd=project, env={**ENV, **(env or {})})
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def cli_json(project: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(cli(project, *args, "--json", env=env).stdout)


def assert_error(result: Any, *needles: str) -> None:
    """Exit 1 with ``Error: …`` naming every needle, and no traceback."""
    err = result.stderr
    assert result.returncode == 1, (result.returncode, result.stdout, err)
    assert "Traceback" not in err and "Internal error" not in err, err
    assert "Error: " in err, err
    for needle in needles:
        assert needle in err, (needle, err)


def dead_pid() -> int:
    """The pid of a process that has exited (a writer killed mid-way, as far as loopml knows)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def listing(folder: Path) -> list[str]:
    """Every path under ``folder`` (hidden ones too), relative and sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. ``"4m"``) mounted at ``where`` for the duration."""
    where.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


@contextlib.contextmanager
def read_only_copy(source: Path, where: Path) -> Iterator[Path]:
    """A copy of the folder ``source`` at ``where`` that this process cannot write.

    ``chmod -R a-w`` is enough for an ordinary user; root ignores permissions, so as root
    the copy lives on a small tmpfs remounted read-only.
    """
    if os.geteuid() != 0:
        shutil.copytree(source, where)
        for folder, dirs, files in os.walk(where):
            for name in [*dirs, *files]:
                os.chmod(os.path.join(folder, name), 0o555 if name in dirs else 0o444)
        os.chmod(where, 0o555)
        try:
            assert not os.access(where, os.W_OK)
            yield where
        finally:
            for folder, _dirs, _files in os.walk(where):
                os.chmod(folder, 0o755)
        return
    with tmpfs(where, "64m"):
        shutil.copytree(source, where, dirs_exist_ok=True)
        _mount("-o", "remount,ro", str(where))
        assert not os.access(where, os.W_OK)
        yield where
