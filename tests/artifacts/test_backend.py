"""Backends: the six operations on a folder and on S3, LocalBackend's durable publish, staging."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from places import Place

from loopml.artifacts import BlobBackend, FsspecBackend, LocalBackend
from loopml.artifacts._staging import StagingArea, process_start
from loopml.artifacts.backend import describe_os_error
from loopml.errors import StorageError


def _temp(backend: LocalBackend, data: bytes) -> Path:
    path = backend.staging.new_path()
    path.write_bytes(data)
    return path


@pytest.fixture(params=["local", "s3"])
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> BlobBackend:
    """A LocalBackend on a folder, and an FsspecBackend on the test S3 server."""
    if request.param == "local":
        return LocalBackend(tmp_path / "root")
    place: Place = request.getfixturevalue("s3_place")
    return FsspecBackend(place.uri, place.storage_options)


def test_the_six_operations_on_every_backend(any_backend: BlobBackend, tmp_path: Path) -> None:
    """The BlobBackend protocol: a key holds what was written until it is replaced or deleted."""
    first, other = tmp_path / "first", tmp_path / "other"
    first.write_bytes(b"first bytes!")
    other.write_bytes(b"other bytes!")  # the same size: only content addressing tells them apart
    key = "objects/ab/cd"
    assert not any_backend.exists(key) and any_backend.info(key) is None
    assert any_backend.write(key, first) is True
    assert any_backend.write(key, other) is False, "an existing key is kept"
    with any_backend.read(key) as f:
        assert f.read() == b"first bytes!"
    info = any_backend.info(key)
    assert info is not None and info.size == 12 and info.modified
    assert any_backend.write("objects/ef/01", other) is True
    assert sorted(any_backend.list("objects")) == ["objects/ab/cd", "objects/ef/01"]
    assert list(any_backend.list("nothing")) == []
    assert any_backend.write(key, other, replace=True) is True
    with any_backend.read(key) as f:
        assert f.read() == b"other bytes!"
    any_backend.delete(key)
    any_backend.delete(key)  # deleting an absent key is not an error
    assert not any_backend.exists(key) and any_backend.info(key) is None
    assert list(any_backend.list("objects")) == ["objects/ef/01"]
    with pytest.raises(FileNotFoundError):
        any_backend.read(key)


def test_local_write_publishes_read_only_and_never_replaces(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "root")
    src = _temp(backend, b"first")
    assert backend.write("objects/ab/cd", src) is True
    dest = tmp_path / "root" / "objects" / "ab" / "cd"
    assert dest.read_bytes() == b"first"
    assert dest.stat().st_mode & 0o777 == 0o444
    assert dest.stat().st_ino == src.stat().st_ino, "published by hard link from the temp file"
    other = _temp(backend, b"other")  # same size, different bytes: the key is not replaced
    assert backend.write("objects/ab/cd", other) is False
    assert dest.read_bytes() == b"first"
    shorter = _temp(backend, b"fir")  # a truncated key is healed (content addressing decides)
    assert backend.write("objects/ab/cd", shorter) is True
    assert dest.read_bytes() == b"fir"


def test_local_write_failure_names_path_and_cause(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    (tmp_path / "objects").write_text("a file where a folder must be")
    src = _temp(backend, b"data")
    with pytest.raises(
        StorageError, match=r"Could not store the blob at .*objects/ab/cd after 4 bytes"
    ):
        backend.write("objects/ab/cd", src)


def test_describe_os_error() -> None:
    assert describe_os_error(OSError(28, "x")) == "disk full (ENOSPC)"
    assert describe_os_error(OSError(5, "x")) == "I/O error (EIO)"
    assert describe_os_error(ValueError("odd")) == "odd"


def test_process_start_identifies_processes() -> None:
    me = process_start(os.getpid())
    assert me and me.isdigit()
    assert process_start(os.getpid()) == me
    assert process_start(os.getppid()) is not None
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert process_start(proc.pid) is None


def test_staging_clean_keeps_unknown_and_live(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "tmp")
    assert area.clean() == 0 and list(area) == []
    live = area.new_path()
    live.write_bytes(b"in progress")
    (tmp_path / "tmp" / "sub").mkdir()
    assert list(area) == [live]
    assert area.clean() == 0
    assert live.exists()


# --- FsspecBackend ---------------------------------------------------------------------


def test_fsspec_backend_wraps_foreign_errors() -> None:
    with pytest.raises(StorageError, match="Could not open the artifact store"):
        FsspecBackend("nosuchprotocol://bucket").exists("k")
