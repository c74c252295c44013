"""S3-only behaviour: verified local copies in front of the bucket, and no stale views of it.

A remote store keeps a verified copy of every blob it wrote or read in its cache folder
and serves reads from there; the bucket itself is checked by ``verify`` (and so by
``loopml fsck``), and a lost or damaged object can be uploaded again from such a copy
(``restore_from_cache``, what ``fsck --repair`` does). Everything else is the shared
contract in ``test_contract.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from places import Place, key_of

from loopml.errors import IntegrityError


def test_reads_are_served_from_the_verified_local_copy(s3_place: Place) -> None:
    """The machine that wrote a blob keeps reading its copy after the object is damaged;
    ``verify`` checks the bucket itself, and other machines are refused."""
    data = b"model weights" * 100
    writer = s3_place.open()
    stored = writer.put_bytes(data)
    s3_place.flip(stored.digest)
    assert writer.get_bytes(stored.digest) == data
    with pytest.raises(IntegrityError, match=f"at {s3_place.location(stored.digest)} is corrupt"):
        writer.verify(stored.digest)
    with pytest.raises(IntegrityError, match="is corrupt"):
        s3_place.open().get_bytes(stored.digest)
    s3_place.remove(stored.digest)
    assert writer.get_bytes(stored.digest) == data
    assert not writer.exists(stored.digest)


def test_same_size_damage_is_found_by_verify_and_repaired_from_a_copy(s3_place: Place) -> None:
    """``is_intact`` and ``publish`` only compare sizes on S3 (checking the bytes would mean
    downloading them); ``verify`` finds the damage and ``restore_from_cache`` repairs it."""
    data = b"same size, other bytes" * 50
    writer = s3_place.open()
    stored = writer.put_bytes(data)
    s3_place.flip(stored.digest)
    assert writer.is_intact(stored.digest, stored.size)
    staged = s3_place.open().stage(data)
    try:
        assert s3_place.open().publish(staged) is False
    finally:
        staged.discard()
    assert s3_place.read(stored.digest) != data
    with pytest.raises(IntegrityError, match="is corrupt"):
        writer.verify(stored.digest)

    assert writer.restore_from_cache(stored.digest) is True
    writer.verify(stored.digest)
    assert s3_place.read(stored.digest) == data
    assert s3_place.open().get_bytes(stored.digest) == data


def test_restore_from_cache_needs_an_intact_copy(s3_place: Place) -> None:
    writer = s3_place.open()
    stored = writer.put_bytes(b"only copy" * 100)
    s3_place.remove(stored.digest)
    assert s3_place.open().restore_from_cache(stored.digest) is False, "no copy on this machine"
    assert s3_place.keys() == []
    copy = writer.local_path(stored.digest)
    copy.chmod(0o644)
    copy.write_bytes(b"only c0py" * 100)
    assert writer.restore_from_cache(stored.digest) is False, "a damaged copy is not uploaded"
    assert not copy.exists(), "and it is dropped"
    assert s3_place.keys() == []


def test_a_stale_listing_is_never_trusted(s3_place: Place) -> None:
    """Another machine's gc deletes a blob this store has listed: writing the same bytes
    again must upload them, not trust what the listing said."""
    data = b"listed, then deleted elsewhere"
    store = s3_place.open()
    stored = store.put_bytes(data)
    assert list(store.iter_digests()) == [stored.digest]
    s3_place.remove(stored.digest)
    assert not store.exists(stored.digest)
    assert store.info(stored.digest) is None
    assert store.put_bytes(data).digest == stored.digest
    assert s3_place.keys() == [key_of(stored.digest)]
    assert s3_place.open().get_bytes(stored.digest) == data


def test_a_blob_written_elsewhere_is_seen_at_once(s3_place: Place) -> None:
    store = s3_place.open()
    first = store.put_bytes(b"first")
    assert list(store.iter_digests()) == [first.digest]
    # Same shard folder (objects/<2 hex>/) as the listed blob: its listing is what a
    # cache would have kept.
    data, n = b"", 0
    while not hashlib.sha256(data).hexdigest().startswith(first.digest[:2]):
        data, n = f"from another machine, attempt {n}".encode(), n + 1
    second = hashlib.sha256(data).hexdigest()
    s3_place.write_key(key_of(second), data)  # another machine's upload
    assert store.exists(second)
    assert store.get_bytes(second) == data
    assert sorted(store.iter_digests()) == sorted([first.digest, second])


def test_a_store_at_the_bucket_root(s3_place: Place) -> None:
    root = Place("s3", f"s3://{s3_place.bucket}", s3_place.tmp, s3_place.storage_options)
    store = root.open()
    stored = store.put_bytes(b"at the root")
    assert store.blob_path(stored.digest) == f"s3://{s3_place.bucket}/{key_of(stored.digest)}"
    assert list(store.iter_digests()) == [stored.digest]
    assert root.open().get_bytes(stored.digest) == b"at the root"
    store.delete(stored.digest)
    assert list(root.open().iter_digests()) == []


def test_fsck_repairs_a_damaged_object_from_a_verified_copy(
    s3_place: Place, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``loopml fsck --repair`` does on S3 for damage only ``verify`` can see."""
    from loopml.tracking.client import Client

    s3_place.configure(project)
    monkeypatch.setenv("LOOPML_CACHE_DIR", str(tmp_path / "cache-client"))
    client = Client(store_uri=str(tmp_path / "meta.db")).open()
    try:
        with client.start_run("train") as run:
            digest = run.log_artifact(b"weights" * 100, "model")
        s3_place.flip(digest)
        report = client.fsck()
        assert [(p.kind, p.digest, p.path) for p in report.problems] == [
            ("corrupt", digest, s3_place.location(digest))
        ]
        repaired = client.fsck(repair=True)
        assert repaired.repaired == 1
        assert "uploaded again from the verified local copy" in repaired.problems[0].repair
        assert s3_place.read(digest) == b"weights" * 100
        assert client.fsck().problems == []
    finally:
        client.close()
