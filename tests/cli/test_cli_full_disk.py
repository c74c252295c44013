"""A full disk (RELIABILITY.md R10; issue 12 §1b "A full disk is misreported").

The project's ``.loopml`` is a 4 MB tmpfs. A step whose output does not fit fails with an
error naming the path, the bytes and "disk full (ENOSPC)", and its run ends ``failed``; a
step that fills the disk itself (as another program would) still lets its run record
``failed`` (the store keeps a small reserve it gives back to record the end). On the full
disk ``loopml runs``, ``runs show``, ``artifacts get`` and ``fsck`` still work; commands
that must write say the disk is full. Previously stored data stays intact.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cli_helpers import ENV, assert_error, cli, cli_json, tmpfs

from cli_runner import run_cli

PIPELINES = '''
from __future__ import annotations

import os

from loopml import pipeline, step


@step
def greet() -> str:
    return "hello"


@pipeline
def fine():
    return greet()


@step
def huge(mb: int) -> bytes:
    return os.urandom(mb * 2**20)


@pipeline
def big(mb: int = 8):
    return huge(mb)


@step
def hog(path: str) -> bytes:
    """Fill the disk, as another program could, then return a value to store."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)  # unbuffered: no close() error
    try:
        while True:
            os.write(fd, os.urandom(65536))
    except OSError:
        pass
    finally:
        os.close(fd)
    return os.urandom(100_000)


@pipeline
def hogging(path: str = ".loopml/hog"):
    return hog(path)
'''


@pytest.fixture
def small_disk(project: Path) -> Iterator[Path]:
    """The project, with ``.loopml`` on its own 4 MB tmpfs."""
    (project / "pipelines.py").write_text(PIPELINES)
    with tmpfs(project / ".loopml", "4m"):
        yield project


def _fill(folder: Path) -> None:
    try:
        with open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\xff" * 4096)
                f.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC


def test_a_full_disk_fails_the_run_clearly_and_the_store_stays_readable(
    small_disk: Path, tmp_path: Path
) -> None:
    project = small_disk
    store = project / ".loopml"
    first = cli_json(project, "run", "fine")
    greeting = first["outputs"]["greet"]

    too_big = run_cli("run", "big", cwd=project, env=ENV)
    assert too_big.returncode == 1, too_big.stderr
    found = re.search(
        r"Could not write the temp file (\S+) after ([\d,]+) bytes of 8,388,608: "
        r"disk full \(ENOSPC\)",
        too_big.stderr,
    )
    assert found, too_big.stderr
    assert Path(found[1]).parent == store / "blobs" / "tmp"
    assert 0 < int(found[2].replace(",", "")) < 4 * 2**20
    assert list((store / "blobs" / "tmp").iterdir()) == []  # the partial file is gone

    # No heartbeat during the step: one landing while ``hog`` is still writing would give
    # the reserve back early and ``hog`` would eat it too (a real risk, not the one tested).
    hogged = run_cli("run", "hogging", cwd=project, env={**ENV, "LOOPML_HEARTBEAT_SECONDS": "60"})
    assert hogged.returncode == 1 and "disk full (ENOSPC)" in hogged.stderr, hogged.stderr
    _fill(store)  # and keep it full

    runs = {r["run"]: r for r in cli_json(project, "runs")}
    assert {name: r["status"] for name, r in runs.items()} == {
        "fine#1": "succeeded",
        "big#1": "failed",  # not "crashed"
        "hogging#1": "failed",
    }
    assert "disk full (ENOSPC)" in runs["big#1"]["error"]
    assert "disk full (ENOSPC)" in runs["hogging#1"]["error"]
    assert "fine#1" in cli(project, "runs").stdout
    assert cli_json(project, "runs", "show", "fine#1")["status"] == "succeeded"
    checked = run_cli("fsck", "--json", cwd=project, env=ENV)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert '"problems": []' in checked.stdout
    exported = tmp_path / "greeting.txt"
    cli(project, "artifacts", "get", greeting, "-o", str(exported))
    assert exported.read_text() == "hello"

    for command in (("runs", "tag", "fine#1", "k=v"), ("run", "fine")):
        assert_error(run_cli(*command, cwd=project, env=ENV), "is full", str(store / "store.db"))

    (store / "filler").unlink(missing_ok=True)
    (store / "hog").unlink()
    assert cli_json(project, "fsck")["problems"] == []
    assert cli_json(project, "run", "fine")["cached_steps"] == 1  # the earlier output is intact
