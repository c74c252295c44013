"""Transfers cut mid-way (RELIABILITY.md R11, at CI size): nothing partial is ever visible.

A :class:`net_proxy.CuttingProxy` sits between the store and the S3 server and resets
every connection once half of a 3 MB blob has passed; the network then stays down (so
the client's own retries fail too) until ``pass_all()``, and the next attempt must work.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from places import Place

from loopml.artifacts import ArtifactStore
from loopml.errors import StorageError
from net_proxy import CuttingProxy, Direction
from s3_server import S3Server

SIZE = 3 * 2**20


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[CuttingProxy]:
    with CuttingProxy(s3.host, s3.port) as p:
        yield p


def _through(place: Place, proxy: CuttingProxy) -> ArtifactStore:
    """A store that reaches the bucket through the proxy, with its own empty cache."""
    assert place.s3 is not None
    options = place.s3.storage_options(endpoint_url=proxy.endpoint_url)
    return ArtifactStore(place.uri, storage_options=options, cache_dir=place.tmp / "cache-proxy")


def _versions(place: Place) -> list[str]:
    """Every version of every object in the bucket: a failed upload must leave none."""
    assert place.s3 is not None
    found = place.s3.client().list_object_versions(Bucket=place.bucket)
    return [v["Key"] for kind in ("Versions", "DeleteMarkers") for v in found.get(kind, [])]


def _cached(place: Place) -> list[Path]:
    return [p for p in (place.tmp / "cache-proxy").rglob("*") if p.is_file()]


def test_an_upload_cut_at_half_leaves_no_object(s3_place: Place, proxy: CuttingProxy) -> None:
    data = os.urandom(SIZE)
    digest = hashlib.sha256(data).hexdigest()
    store = _through(s3_place, proxy)

    proxy.cut_after(Direction.CLIENT_TO_SERVER, SIZE // 2)
    with pytest.raises(StorageError) as caught:
        store.put_bytes(data)
    assert proxy.cut_happened
    message = str(caught.value)
    assert f"Could not upload the blob to {s3_place.location(digest)} ({SIZE:,} bytes)" in message
    assert "retry" in message
    assert _versions(s3_place) == [], "no object, not even a partial one, under any key"
    assert s3_place.s3 is not None
    uploads = s3_place.s3.client().list_multipart_uploads(Bucket=s3_place.bucket)
    assert uploads.get("Uploads", []) == []
    assert _cached(s3_place) == [], "an upload that failed leaves no local copy to trust"

    proxy.pass_all()
    assert store.put_bytes(data).digest == digest
    assert s3_place.read(digest) == data
    assert s3_place.open().get_bytes(digest) == data


def test_a_download_cut_at_half_is_never_returned_or_cached(
    s3_place: Place, proxy: CuttingProxy, tmp_path: Path
) -> None:
    data = os.urandom(SIZE)
    stored = s3_place.open().put_bytes(data)
    reader = _through(s3_place, proxy)
    location = s3_place.location(stored.digest)

    proxy.cut_after(Direction.SERVER_TO_CLIENT, SIZE // 2)
    with pytest.raises(StorageError) as caught:
        reader.get_bytes(stored.digest)
    assert proxy.cut_happened
    message = str(caught.value)
    assert f"Could not download {location} after " in message and f"of {SIZE:,}" in message
    assert _cached(s3_place) == [], "nothing truncated is cached, not even as a temp file"
    proxy.pass_all()

    out = tmp_path / "export" / "model.bin"
    proxy.cut_after(Direction.SERVER_TO_CLIENT, SIZE // 2)
    with pytest.raises(StorageError, match=f"Could not download {location}"):
        reader.export(stored.digest, "bytes", out)
    assert proxy.cut_happened
    assert not out.exists() and list(out.parent.glob("*")) == [], "no export, no .part"
    assert _cached(s3_place) == []

    proxy.pass_all()
    assert reader.get_bytes(stored.digest) == data
    copy = reader.local_path(stored.digest)
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == stored.digest
    assert reader.export(stored.digest, "bytes", out).read_bytes() == data
