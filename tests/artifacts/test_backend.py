"""Backends: LocalBackend's durable publish, FsspecBackend on memory://, remote stores."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from artifact_helpers import flip_byte

from loopml.artifacts import ArtifactStore, BlobBackend, FsspecBackend, LocalBackend
from loopml.artifacts._staging import StagingArea, process_start
from loopml.artifacts.backend import describe_os_error
from loopml.errors import IntegrityError, InvalidParameterError, StorageError


def _temp(backend: LocalBackend, data: bytes) -> Path:
    path = backend.staging.new_path()
    path.write_bytes(data)
    return path


def _backend(kind: str, tmp_path: Path, memory_uri: str) -> tuple[BlobBackend, Callable[[], Path]]:
    """A backend of ``kind`` and where to write its source files (local: its staging area)."""
    if kind == "local":
        local = LocalBackend(tmp_path / "root")
        return local, local.staging.new_path
    names = iter(range(1_000))
    return FsspecBackend(memory_uri), lambda: tmp_path / f"src{next(names)}"


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_every_backend_keeps_the_blob_contract(kind: str, tmp_path: Path, memory_uri: str) -> None:
    """What the artifact store relies on, through the protocol alone, on every backend."""
    backend, new_path = _backend(kind, tmp_path, memory_uri)

    def source(data: bytes) -> Path:
        path = new_path()
        path.write_bytes(data)
        return path

    assert not backend.exists("objects/ab/cd") and backend.info("objects/ab/cd") is None
    assert backend.write("objects/ab/cd", source(b"first bytes")) is True
    assert backend.write("objects/ab/ef", source(b"other")) is True
    # a key is never replaced: same size, different bytes leaves the stored blob alone
    assert backend.write("objects/ab/cd", source(b"FIRST BYTES")) is False
    with backend.read("objects/ab/cd") as f:
        assert f.read() == b"first bytes"
    info = backend.info("objects/ab/cd")
    assert info is not None and info.size == len(b"first bytes")
    assert sorted(backend.list("objects")) == ["objects/ab/cd", "objects/ab/ef"]
    with fsspec.open(f"{backend.uri}/objects/ab/ef", "rb") as f:  # uri: where error messages point
        assert f.read() == b"other"
    backend.delete("objects/ab/cd")
    backend.delete("objects/ab/cd")  # deleting twice is fine (gc may race a user)
    assert not backend.exists("objects/ab/cd") and backend.exists("objects/ab/ef")
    assert list(backend.list("objects")) == ["objects/ab/ef"]
    with pytest.raises(FileNotFoundError):
        backend.read("objects/ab/cd")


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


def test_local_list_info_read_delete(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    for key in ("objects/aa/1", "objects/bb/2"):
        backend.write(key, _temp(backend, key.encode()))
    assert sorted(backend.list("objects")) == ["objects/aa/1", "objects/bb/2"]
    assert list(backend.list("nothing")) == []
    info = backend.info("objects/aa/1")
    assert info is not None and info.size == len(b"objects/aa/1") and info.modified
    assert backend.info("objects/zz/9") is None
    with backend.read("objects/bb/2") as f:
        assert f.read() == b"objects/bb/2"
    backend.delete("objects/aa/1")
    backend.delete("objects/aa/1")
    assert not backend.exists("objects/aa/1") and backend.exists("objects/bb/2")


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


# --- FsspecBackend on fsspec's real memory filesystem -------------------------------


def test_fsspec_backend_round_trip(memory_uri: str, tmp_path: Path) -> None:
    backend = FsspecBackend(memory_uri)
    src = tmp_path / "blob"
    src.write_bytes(b"remote bytes")
    assert not backend.exists("objects/ab/cd")
    assert backend.write("objects/ab/cd", src) is True
    assert backend.write("objects/ab/cd", src) is False, "an existing key is not uploaded again"
    assert backend.exists("objects/ab/cd")
    info = backend.info("objects/ab/cd")
    assert info is not None and info.size == 12 and info.modified
    with backend.read("objects/ab/cd") as f:
        assert f.read() == b"remote bytes"
    assert list(backend.list("objects")) == ["objects/ab/cd"]
    assert list(backend.list("missing")) == []
    backend.delete("objects/ab/cd")
    backend.delete("objects/ab/cd")
    assert backend.info("objects/ab/cd") is None
    with pytest.raises(FileNotFoundError):
        backend.read("objects/ab/cd")


def test_fsspec_backend_wraps_foreign_errors() -> None:
    with pytest.raises(StorageError, match="Could not open the artifact store"):
        FsspecBackend("nosuchprotocol://bucket").exists("k")


def test_remote_store_round_trip_and_cache(
    remote: ArtifactStore, memory_uri: str, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.5], "y": ["a", "b"]})
    stored = remote.put_value(frame)
    key = f"objects/{stored.digest[:2]}/{stored.digest[2:]}"
    assert remote.blob_path(stored.digest) == f"{memory_uri}/{key}"
    fs = fsspec.filesystem("memory")
    assert fs.cat_file(f"{memory_uri.removeprefix('memory://')}/{key}") == remote.get_bytes(
        stored.digest
    )
    assert list(remote.iter_digests()) == [stored.digest]
    assert remote.exists(stored.digest)
    pd.testing.assert_frame_equal(
        remote.get_value(stored.digest, stored.materializer, stored.metadata), frame
    )
    cached = remote.local_path(stored.digest)
    assert cached.is_relative_to(tmp_path / "cache")
    assert remote.put_value(frame.copy()).digest == stored.digest
    remote.verify(stored.digest)
    assert list(remote.iter_temp()) == []


def test_remote_sklearn_model_loads_from_a_fresh_cache(
    remote: ArtifactStore, memory_uri: str, tmp_path: Path
) -> None:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    stored = remote.put_value(model)
    fresh = ArtifactStore(memory_uri, cache_dir=tmp_path / "fresh")
    loaded = fresh.get_value(stored.digest, stored.materializer, stored.metadata)
    assert loaded.predict([[10.0]]).tolist() == model.predict([[10.0]]).tolist()


def test_remote_download_is_verified_before_use(
    remote: ArtifactStore, memory_uri: str, tmp_path: Path
) -> None:
    stored = remote.put_bytes(b"remote payload" * 50)
    path = f"{memory_uri.removeprefix('memory://')}/objects/{stored.digest[:2]}/{stored.digest[2:]}"
    fs = fsspec.filesystem("memory")
    data = bytearray(fs.cat_file(path))
    data[3] ^= 1
    fs.pipe_file(path, bytes(data))
    with pytest.raises(IntegrityError, match=f"at {memory_uri}/objects/.* is corrupt"):
        remote.verify(stored.digest)
    fresh = ArtifactStore(memory_uri, cache_dir=tmp_path / "other-cache")
    for read in (fresh.get_bytes, fresh.local_path, lambda d: fresh.get_value(d, "bytes")):
        with pytest.raises(IntegrityError, match="is corrupt"):
            read(stored.digest)
    assert list((tmp_path / "other-cache").rglob("objects/*/*")) == [], (
        "nothing unverified is cached"
    )
    assert list(fresh.iter_temp()) == []


def test_remote_corrupt_cache_copy_is_fetched_again(remote: ArtifactStore) -> None:
    stored = remote.put_bytes(b"cached" * 100)
    cached = remote.local_path(stored.digest)
    flip_byte(cached, 2)
    assert remote.get_bytes(stored.digest) == b"cached" * 100
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == stored.digest


def test_remote_missing_blob(remote: ArtifactStore, memory_uri: str) -> None:
    stored = remote.put_bytes(b"soon gone")
    remote.delete(stored.digest)
    assert not remote.exists(stored.digest)
    for read in (remote.get_bytes, remote.local_path, remote.verify):
        with pytest.raises(IntegrityError, match=f"is missing: no blob at {memory_uri}/objects"):
            read(stored.digest)
    with pytest.raises(InvalidParameterError):
        remote.get_bytes("../../etc/passwd")


def test_remote_folder_and_export(remote: ArtifactStore, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "weights.bin").write_bytes(b"w" * 100)
    stored = remote.put_file(folder)
    out = remote.export(stored.digest, stored.materializer, tmp_path / "exported")
    assert (out / "sub" / "weights.bin").read_bytes() == b"w" * 100
