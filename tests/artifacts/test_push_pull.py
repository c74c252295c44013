"""``Client.push``/``Client.pull`` (``tracking/sync.py``) against a folder and a real S3 server.

The remote is named in the project's ``loopml.toml`` (``[remote]``), as a user would. The
project's own store is a local folder; "another machine sharing the metadata" is this
store with its blobs deleted. ``remote_place`` runs each test on a folder remote and on
``s3://<fresh bucket>/prefix`` on the loopback moto server; a :class:`places.Place`
changes the remote's objects behind loopml's back (bit rot, a cut upload).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from places import Place, key_of

from loopml.config import load_settings
from loopml.errors import RemoteError
from loopml.tracking.client import Client
from net_proxy import CuttingProxy, Direction
from s3_server import S3Server, start_s3

BIG = 3 * 2**20


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def configure(project: Path, url: str | None, options: dict[str, Any] | None = None) -> None:
    """Write ``loopml.toml`` with ``[remote]`` (or without one when ``url`` is None)."""
    text = '[project]\nname = "t"\n'
    if url is not None:
        text += f"[remote]\nurl = {_toml(url)}\n"
        if options:
            text += "[remote.options]\n" + "".join(
                f"{k} = {_toml(v)}\n" for k, v in options.items()
            )
    (project / "loopml.toml").write_text(text)


def open_client(project: Path, place: Place, *, options: dict[str, Any] | None = None) -> Client:
    configure(project, place.uri, options if options is not None else place.storage_options)
    return Client(load_settings()).open()


@pytest.fixture(params=["folder", "s3"])
def remote_place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "folder":
        return Place("local", str(tmp_path / "remote"), tmp_path)
    return request.getfixturevalue("s3_place")  # type: ignore[no-any-return]


def _store(client: Client, *values: bytes) -> list[str]:
    return [client.store_value(v).digest for v in values]


def _drop_local_blobs(project: Path) -> None:
    shutil.rmtree(project / ".loopml" / "blobs" / "objects")


def _local(project: Path, digest: str) -> Path:
    return project / ".loopml" / "blobs" / key_of(digest)


def test_push_sends_what_is_missing_once(project: Path, remote_place: Place) -> None:
    client = open_client(project, remote_place)
    values = [os.urandom(1000), os.urandom(200_000), b"small"]
    digests = _store(client, *values)

    report = client.push()
    assert sorted(d for d, _ in report.transferred) == sorted(digests)
    assert report.bytes == sum(len(v) for v in values)
    assert report.ok and not report.dry_run
    for digest, value in zip(digests, values, strict=True):
        assert remote_place.read(digest) == value

    again = client.push()
    assert again.transferred == [] and sorted(d for d, _ in again.skipped) == sorted(digests)

    digests += _store(client, b"one more")
    third = client.push()
    assert [d for d, _ in third.transferred] == [digests[-1]]


def test_pull_restores_verified_byte_identical_blobs(project: Path, remote_place: Place) -> None:
    client = open_client(project, remote_place)
    values = [os.urandom(100_000), os.urandom(10)]
    digests = _store(client, *values)
    client.push()
    _drop_local_blobs(project)

    report = client.pull()
    assert sorted(d for d, _ in report.transferred) == sorted(digests)
    assert report.ok
    for digest, value in zip(digests, values, strict=True):
        assert _local(project, digest).read_bytes() == value
        assert client.load_artifact(digest) == value
        client.artifacts.verify(digest)
    assert client.pull().transferred == []


def test_pull_replaces_a_damaged_local_blob(project: Path, remote_place: Place) -> None:
    client = open_client(project, remote_place)
    (digest,) = _store(client, b"intact bytes" * 100)
    client.push()
    path = _local(project, digest)
    path.chmod(0o644)
    path.write_bytes(b"intact byte5" * 100)

    report = client.pull()
    assert [d for d, _ in report.transferred] == [digest]
    assert path.read_bytes() == b"intact bytes" * 100


def test_dry_runs_transfer_nothing(project: Path, remote_place: Place) -> None:
    client = open_client(project, remote_place)
    digests = _store(client, b"a" * 100, b"b" * 200)

    planned = client.push(dry_run=True)
    assert planned.dry_run and sorted(d for d, _ in planned.transferred) == sorted(digests)
    assert planned.bytes == 300
    assert remote_place.keys() == []

    client.push()
    _drop_local_blobs(project)
    planned = client.pull(dry_run=True)
    assert sorted(d for d, _ in planned.transferred) == sorted(digests)
    assert not any(_local(project, d).exists() for d in digests)


def test_a_blob_corrupted_on_the_remote_is_named_and_not_installed(
    project: Path, remote_place: Place
) -> None:
    client = open_client(project, remote_place)
    good, bad = _store(client, b"good" * 1000, b"bad!" * 1000)
    client.push()
    remote_place.flip(bad)
    _drop_local_blobs(project)

    report = client.pull()
    assert [d for d, _ in report.transferred] == [good]
    assert len(report.failed) == 1
    digest, message = report.failed[0]
    assert digest == bad
    assert "corrupted on the remote" in message and key_of(bad) in message
    assert "loopml push" in message
    assert not _local(project, bad).exists(), "a corrupt blob is never installed"
    staging = project / ".loopml" / "blobs" / "tmp"
    assert not staging.exists() or list(staging.iterdir()) == [], "no temp file left"
    assert _local(project, good).read_bytes() == b"good" * 1000


def test_a_blob_missing_on_the_remote_fails_pull(project: Path, remote_place: Place) -> None:
    client = open_client(project, remote_place)
    (digest,) = _store(client, b"never pushed")
    _store(client, b"pushed")
    client.push()
    remote_place.remove(digest)
    _drop_local_blobs(project)
    assert [d for d, _ in client.pull(dry_run=True).failed] == [digest]
    report = client.pull()
    assert len(report.transferred) == 1 and [d for d, _ in report.failed] == [digest]
    assert "not on the remote" in report.failed[0][1]


def test_push_skips_blobs_missing_here(project: Path, remote_place: Place) -> None:
    client = open_client(project, remote_place)
    (digest,) = _store(client, b"lost locally")
    _drop_local_blobs(project)
    report = client.push()
    assert report.transferred == [] and [d for d, _ in report.unavailable] == [digest]
    assert remote_place.keys() == []


# --- interrupted transfers (RELIABILITY.md R11) ------------------------------------------


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[CuttingProxy]:
    with CuttingProxy(s3.host, s3.port) as p:
        yield p


def test_a_push_cut_mid_upload_leaves_no_object_and_resumes(
    project: Path, s3_place: Place, proxy: CuttingProxy
) -> None:
    assert s3_place.s3 is not None
    options = s3_place.s3.storage_options(endpoint_url=proxy.endpoint_url)
    client = open_client(project, s3_place, options=options)
    big = os.urandom(BIG)
    digests = _store(client, big, b"small one", b"small two")
    big_digest = hashlib.sha256(big).hexdigest()

    proxy.cut_after(Direction.CLIENT_TO_SERVER, BIG // 2)
    with pytest.raises(RemoteError) as caught:
        client.push()
    assert proxy.cut_happened
    message = str(caught.value)
    assert big_digest in message and "run `loopml push` again" in message
    assert s3_place.read(big_digest) is None, "no object, not even a partial one"
    uploads = s3_place.s3.client().list_multipart_uploads(Bucket=s3_place.bucket)
    assert uploads.get("Uploads", []) == []
    before = set(s3_place.keys())

    proxy.pass_all()
    report = client.push()
    sent = {d for d, _ in report.transferred}
    assert big_digest in sent
    assert sent | {d for d, _ in report.skipped} == set(digests)
    assert not sent & {k.rpartition("/")[2] for k in before}, "nothing sent twice"
    assert s3_place.read(big_digest) == big


def test_a_pull_cut_mid_download_installs_nothing_and_resumes(
    project: Path, s3_place: Place, proxy: CuttingProxy
) -> None:
    assert s3_place.s3 is not None
    options = s3_place.s3.storage_options(endpoint_url=proxy.endpoint_url)
    client = open_client(project, s3_place, options=options)
    big = os.urandom(BIG)
    (digest,) = _store(client, big)
    client.push()
    _drop_local_blobs(project)

    proxy.cut_after(Direction.SERVER_TO_CLIENT, BIG // 2)
    with pytest.raises(RemoteError, match="run `loopml pull` again"):
        client.pull()
    assert proxy.cut_happened
    assert not _local(project, digest).exists()

    proxy.pass_all()
    assert [d for d, _ in client.pull().transferred] == [digest]
    assert _local(project, digest).read_bytes() == big


# --- the remote cannot be used ------------------------------------------------------------


def test_no_remote_configured(project: Path) -> None:
    configure(project, None)
    client = Client(load_settings()).open()
    for action in (client.push, client.pull):
        with pytest.raises(RemoteError, match=r"No remote configured: add\n  \[remote\]"):
            action()


def test_an_unreachable_endpoint_is_named(project: Path, s3_bucket: Any) -> None:
    with socket.socket() as sock:  # a port nothing listens on once it is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = {**s3_bucket.storage_options, "endpoint_url": f"http://127.0.0.1:{port}"}
    configure(project, f"{s3_bucket.uri}/p", options)
    client = Client(load_settings()).open()
    with pytest.raises(RemoteError) as caught:
        client.push()
    message = str(caught.value)
    assert f"Cannot reach the remote {s3_bucket.uri}/p at http://127.0.0.1:{port}" in message
    assert "endpoint_url" in message


def test_a_bucket_that_does_not_exist_is_named(project: Path, s3: S3Server) -> None:
    configure(project, "s3://no-such-bucket-here/p", s3.storage_options())
    client = Client(load_settings()).open()
    _store(client, b"x")
    with pytest.raises(RemoteError, match="Bucket 'no-such-bucket-here' of remote s3://"):
        client.push()
    with pytest.raises(RemoteError, match="does not exist"):
        client.pull()


@pytest.fixture(scope="module")
def strict_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A moto server of its own that checks credentials (moto accepts any by default)."""
    server = start_s3(tmp_path_factory.mktemp("strict-s3"))
    server.client().create_bucket(Bucket="strict")
    request = urllib.request.Request(
        f"{server.endpoint_url}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200
    yield server
    server.stop()


def test_wrong_credentials_are_named(project: Path, strict_s3: S3Server) -> None:
    configure(project, "s3://strict/p", strict_s3.storage_options())
    client = Client(load_settings()).open()
    _store(client, b"x")
    with pytest.raises(RemoteError) as caught:
        client.push()
    message = str(caught.value)
    assert "refused the credentials" in message and "s3://strict/p" in message
    assert "AWS_ACCESS_KEY_ID" in message


def test_a_folder_remote_that_does_not_exist_is_named_by_pull(
    project: Path, tmp_path: Path
) -> None:
    configure(project, str(tmp_path / "nowhere"))
    client = Client(load_settings()).open()
    with pytest.raises(RemoteError, match="nowhere does not exist"):
        client.pull()


def test_the_remote_url_comes_from_the_environment(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(project, None)
    monkeypatch.setenv("LOOPML_REMOTE_URL", str(tmp_path / "env-remote"))
    client = Client(load_settings()).open()
    (digest,) = _store(client, b"via env")
    assert [d for d, _ in client.push().transferred] == [digest]
    assert (tmp_path / "env-remote" / key_of(digest)).read_bytes() == b"via env"
