"""The artifact store's contract: what every backend keeps, run on a local folder and on S3.

Each test runs twice (``any_place``/``any_store`` in conftest.py): on a local folder and
on ``s3://<fresh bucket>/prefix`` on a real S3-compatible server on 127.0.0.1. A "reader"
is a second store on the same location with its own empty cache folder: what another
machine (or process) sees. Damage is done behind the store's back, to the stored object
itself (the blob file, or the S3 object).

Where the two backends differ on purpose, the test says so; ``test_remote.py`` holds the
S3-only behaviour (its verified local copies) and ``test_blobstore.py`` the local-only one
(fsync, seals, disk limits).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from artifact_helpers import flip_byte
from places import Place, key_of

from loopml.artifacts import ArtifactStore
from loopml.errors import ConflictError, IntegrityError, InvalidParameterError


def _read_paths(store: ArtifactStore, digest: str, out: Path) -> list[Callable[[], object]]:
    """Every way to get a blob's bytes out of the store."""
    return [
        lambda: store.get_bytes(digest),
        lambda: store.get_value(digest, "bytes"),
        lambda: store.local_path(digest),
        lambda: store.export(digest, "bytes", out),
        lambda: store.verify(digest),
    ]


def _cached_blobs(place: Place) -> list[Path]:
    """Blob copies in every cache folder the place's stores used (none for local stores)."""
    return [p for p in place.tmp.glob("cache-*/objects/*/*") if p.is_file()]


def _make_folder(root: Path) -> Path:
    (root / "data" / "empty").mkdir(parents=True)
    (root / "data" / "a.txt").write_text("alpha")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "link-to-a").symlink_to(Path("data") / "a.txt")
    return root


def _tree(root: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = (path.read_bytes(), os.access(path, os.X_OK))
    return found


# --- writing and reading -------------------------------------------------------------


def test_bytes_are_stored_under_their_digest(any_place: Place, any_store: ArtifactStore) -> None:
    data = b"hello loopml" * 100
    stored = any_store.put_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert (stored.digest, stored.size, stored.materializer) == (digest, len(data), "bytes")
    assert any_store.blob_path(digest) == any_place.location(digest)
    assert any_place.keys() == [key_of(digest)]
    assert any_place.read(digest) == data
    assert any_store.exists(digest)
    info = any_store.info(digest)
    assert info is not None and info.size == len(data) and info.modified
    assert list(any_store.iter_digests()) == [digest]
    assert any_store.get_bytes(digest) == data
    assert any_place.open().get_bytes(digest) == data, "another machine reads it"
    assert list(any_store.iter_temp()) == [], "the temp file is gone after publishing"


def test_values_round_trip(any_place: Place, any_store: ArtifactStore) -> None:
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"x": [1.0, 2.5, None], "y": ["a", "b", "ü"]})
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    params = {"alpha": 0.5, "layers": [64, 32], "name": "ü"}
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    stored = [any_store.put_value(v) for v in (params, frame, array, model)]
    assert [s.materializer for s in stored] == [
        "json",
        "pandas.parquet",
        "numpy.npy",
        "sklearn.pickle",
    ]
    for reader in (any_store, any_place.open()):  # the writer, and another machine
        back = [reader.get_value(s.digest, s.materializer, s.metadata) for s in stored]
        assert back[0] == params
        pd.testing.assert_frame_equal(back[1], frame)
        np.testing.assert_array_equal(back[2], array)
        assert back[2].dtype == array.dtype
        assert back[3].predict([[10.0]]).tolist() == model.predict([[10.0]]).tolist()
    assert sorted(any_store.iter_digests()) == sorted(s.digest for s in stored)


def test_files_and_folders_round_trip(
    any_place: Place, any_store: ArtifactStore, tmp_path: Path
) -> None:
    (tmp_path / "report.csv").write_text("x,y\n1,2\n")
    folder = _make_folder(tmp_path / "model")
    file_art = any_store.put_file(tmp_path / "report.csv")
    folder_art = any_store.put_file(folder)
    assert (file_art.materializer, folder_art.materializer) == ("file", "folder.tar")
    for reader in (any_store, any_place.open()):
        loaded_file = reader.get_value(file_art.digest, "file", file_art.metadata)
        assert loaded_file.name == "report.csv"
        assert loaded_file.read_text() == "x,y\n1,2\n"
        assert loaded_file.parent != tmp_path, "a copy, never the user's file"
        loaded = reader.get_value(folder_art.digest, "folder.tar", folder_art.metadata)
        assert loaded.name == "model" and loaded != folder
        assert _tree(loaded) == _tree(folder)
        assert reader.get_value(folder_art.digest, "folder.tar", folder_art.metadata) == loaded, (
            "unpacked once, shared by every later load"
        )


def test_equal_content_is_stored_once(any_place: Place, any_store: ArtifactStore) -> None:
    first = any_store.put_value({"b": [1, 2], "a": "x"})
    version = any_place.version(first.digest)
    staged = any_store.stage({"a": "x", "b": [1, 2]})
    try:
        assert staged.digest == first.digest
        assert any_store.publish(staged) is False, "nothing is written the second time"
    finally:
        staged.discard()
    assert any_place.open().put_bytes(any_store.get_bytes(first.digest)).digest == first.digest
    assert any_place.version(first.digest) == version, "the stored object was never rewritten"
    assert any_place.keys() == [key_of(first.digest)]
    assert list(any_store.iter_temp()) == []


# --- verification on read ------------------------------------------------------------


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_blob_is_refused_on_every_read_path(
    any_place: Place, any_store: ArtifactStore, tmp_path: Path, damage: str
) -> None:
    stored = any_store.put_bytes(b"precious model bytes" * 100)
    getattr(any_place, damage)(stored.digest)
    actual = hashlib.sha256(any_place.read(stored.digest) or b"").hexdigest()
    reader = any_place.open()  # S3: nothing cached yet, so every read downloads
    out = tmp_path / "out.bin"
    for read in _read_paths(reader, stored.digest, out):
        with pytest.raises(IntegrityError) as caught:
            read()
        message = str(caught.value)
        assert f"Artifact {stored.digest} at {any_place.location(stored.digest)} is corrupt" in (
            message
        )
        assert f"hashes to {actual}" in message and "loopml fsck" in message
    assert not out.exists(), "a damaged blob is never exported"
    if any_place.remote:
        assert _cached_blobs(any_place) == [any_store.local_path(stored.digest)], (
            "the reader cached nothing unverified"
        )
    assert list(reader.iter_temp()) == []


def test_a_damaged_local_copy_is_refused_or_fetched_again(
    any_place: Place, any_store: ArtifactStore
) -> None:
    """Local: the copy is the blob, so it is refused. S3: the cache copy is fetched again."""
    data = b"cached" * 1000
    stored = any_store.put_bytes(data)
    copy = any_store.local_path(stored.digest)
    flip_byte(copy, 2)
    if any_place.remote:
        assert any_store.get_bytes(stored.digest) == data
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == stored.digest, "copy healed"
        assert any_store.local_path(stored.digest) == copy
    else:
        with pytest.raises(IntegrityError, match=f"Artifact {stored.digest} at .* is corrupt"):
            any_store.get_bytes(stored.digest)
        assert not any_store.is_intact(stored.digest, stored.size)


def test_a_missing_blob_names_its_digest_and_location(
    any_place: Place, any_store: ArtifactStore, tmp_path: Path
) -> None:
    stored = any_store.put_bytes(b"gone soon")
    any_place.remove(stored.digest)
    reader = any_place.open()
    assert not reader.exists(stored.digest)
    assert reader.info(stored.digest) is None
    assert not reader.is_intact(stored.digest, stored.size)
    expected = (
        f"Artifact {stored.digest} is missing: no blob at {any_place.location(stored.digest)}"
    )
    for read in _read_paths(reader, stored.digest, tmp_path / "out.bin"):
        with pytest.raises(IntegrityError) as caught:
            read()
        assert expected in str(caught.value)
    assert not (tmp_path / "out.bin").exists()


def test_is_intact_checks_presence_and_size(any_place: Place, any_store: ArtifactStore) -> None:
    stored = any_store.put_value(list(range(1000)))
    assert any_store.is_intact(stored.digest, stored.size)
    assert any_place.open().is_intact(stored.digest, stored.size)
    assert not any_store.is_intact(stored.digest, stored.size + 1)
    any_place.truncate(stored.digest)
    assert not any_store.is_intact(stored.digest, stored.size)
    any_place.remove(stored.digest)
    assert not any_store.is_intact(stored.digest, stored.size)


@pytest.mark.parametrize("damage", ["truncate", "remove"])
def test_publishing_again_heals_a_damaged_blob(
    any_place: Place, any_store: ArtifactStore, damage: str
) -> None:
    data = b"heal me" * 300
    stored = any_store.put_bytes(data)
    getattr(any_place, damage)(stored.digest)
    again = any_place.open()  # a re-run elsewhere writes the same output again
    staged = again.stage(data)
    try:
        assert again.publish(staged) is True
    finally:
        staged.discard()
    assert any_place.read(stored.digest) == data
    assert any_place.open().get_bytes(stored.digest) == data
    assert any_store.is_intact(stored.digest, stored.size)


def test_delete(any_place: Place, any_store: ArtifactStore, tmp_path: Path) -> None:
    kept = any_store.put_bytes(b"kept")
    folder = any_store.put_file(_make_folder(tmp_path / "model"))
    loaded = any_store.get_value(folder.digest, "folder.tar", folder.metadata)
    any_store.delete(folder.digest)
    assert not any_store.exists(folder.digest)
    assert any_store.info(folder.digest) is None
    assert any_place.keys() == [key_of(kept.digest)]
    assert not loaded.exists(), "the unpacked copy goes too"
    any_store.delete(folder.digest)  # idempotent, for gc
    for reader in (any_store, any_place.open()):
        with pytest.raises(IntegrityError, match="is missing"):
            reader.get_value(folder.digest, "folder.tar", folder.metadata)
    assert list(any_store.iter_digests()) == [kept.digest]
    assert any_store.put_file(tmp_path / "model").digest == folder.digest
    assert _tree(any_store.get_value(folder.digest, "folder.tar")) == _tree(tmp_path / "model")


def test_iter_digests_lists_only_this_stores_blobs(
    any_place: Place, any_store: ArtifactStore
) -> None:
    digests = {any_store.put_bytes(bytes([n]) * 10).digest for n in range(3)}
    sibling = any_place.sibling()
    sibling.open().put_bytes(b"in the store next door")
    for foreign in ("objects/README", "objects/ab/short", "other/" + "a" * 64, "objects/x.tmp"):
        any_place.write_key(foreign, b"not a blob")
    assert sorted(any_store.iter_digests()) == sorted(digests)
    assert sorted(any_place.open().iter_digests()) == sorted(digests)


# --- export ---------------------------------------------------------------------------


def _parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_export_a_file(any_place: Place, any_store: ArtifactStore, tmp_path: Path) -> None:
    stored = any_store.put_value({"k": [1, 2, 3]})
    reader = any_place.open()
    out = reader.export(stored.digest, "json", tmp_path / "sub" / "params.json")
    assert out == tmp_path / "sub" / "params.json"
    assert json.loads(out.read_text()) == {"k": [1, 2, 3]}
    assert os.access(out, os.W_OK), "an export belongs to the user"
    into = reader.export(stored.digest, "json", tmp_path / "sub")
    assert into == tmp_path / "sub" / f"{stored.digest}.json"
    out.write_text("edited")
    with pytest.raises(ConflictError, match="params.json: the file exists. Pass --force"):
        reader.export(stored.digest, "json", out)
    assert out.read_text() == "edited"
    assert reader.export(stored.digest, "json", out, force=True) == out
    assert json.loads(out.read_text()) == {"k": [1, 2, 3]}
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(["params.json", into.name])
    assert _parts(tmp_path / "sub") == []


def test_export_a_folder(any_place: Place, any_store: ArtifactStore, tmp_path: Path) -> None:
    folder = _make_folder(tmp_path / "model")
    stored = any_store.put_file(folder)
    reader = any_place.open()
    dest = tmp_path / "out" / "model"
    assert reader.export(stored.digest, "folder.tar", dest) == dest
    assert _tree(dest) == _tree(folder)
    (dest / "mine.txt").write_text("user data")
    with pytest.raises(ConflictError, match="the folder is not empty. Pass --force"):
        reader.export(stored.digest, "folder.tar", dest)
    assert (dest / "mine.txt").read_text() == "user data"
    reader.export(stored.digest, "folder.tar", dest, force=True)
    assert _tree(dest) == _tree(folder), "replaced whole, not merged"
    assert _parts(tmp_path / "out") == []
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidParameterError, match="it is a file"):
        reader.export(stored.digest, "folder.tar", tmp_path / "afile")


# --- gc through a Client whose settings name the store --------------------------------


def test_gc_through_a_client(
    any_place: Place, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[store] artifacts`` and ``[store] options`` in loopml.toml reach the blob store."""
    from loopml.tracking.client import Client

    any_place.configure(project)
    monkeypatch.setenv("LOOPML_CACHE_DIR", str(tmp_path / "cache-client"))
    db = str(tmp_path / "meta.db")
    client = Client(store_uri=db).open()
    try:
        assert client.artifacts.uri == any_place.uri
        with client.start_run("train") as run:
            kept = run.log_artifact({"alpha": 0.5}, "params")
        unlinked = client.store_value(b"a row, but no run links it").digest
        orphan = client.artifacts.put_bytes(b"a blob without a row").digest
        assert sorted(any_place.keys()) == sorted(key_of(d) for d in (kept, unlinked, orphan))

        dry = client.gc(dry_run=True, grace_s=0)
        assert sorted(d for d, _ in dry.candidates) == sorted([unlinked, orphan])
        assert any_place.keys() == sorted(key_of(d) for d in (kept, unlinked, orphan))
        report = client.gc(grace_s=0)
        assert sorted(report.deleted) == sorted([unlinked, orphan])
        assert report.bytes == len(b"a row, but no run links it") + len(b"a blob without a row")
        assert any_place.keys() == [key_of(kept)]
        assert client.gc(dry_run=True, grace_s=0).candidates == []
    finally:
        client.close()
    monkeypatch.setenv("LOOPML_CACHE_DIR", str(tmp_path / "cache-other-machine"))
    other = Client(store_uri=db)
    try:
        assert other.load_artifact(kept) == {"alpha": 0.5}
        with pytest.raises(IntegrityError, match="is missing"):
            other.artifacts.get_bytes(orphan)
    finally:
        other.close()
