"""Tests for the test suite's S3 server (tests/s3_server.py) and cutting proxy (net_proxy.py).

Every filesystem here is built with ``skip_instance_cache=True``: fsspec otherwise hands
back one shared S3FileSystem per set of options, whose listing cache goes stale when
another client (or another test) changes the bucket.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import psutil
import pytest
import s3fs
from aiohttp import ClientError
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import s3_server  # noqa: E402
from net_proxy import CuttingProxy, Direction  # noqa: E402
from s3_server import S3Bucket, S3Server, start_s3  # noqa: E402

MB = 2**20
# What a broken transfer may surface as, depending on where it broke: aiohttp's errors
# for a response cut short, botocore's for a request that could not be sent.
TRANSFER_ERRORS = (OSError, ClientError, BotoCoreError)


def _fs(storage_options: dict[str, Any], *, retries: bool = True) -> s3fs.S3FileSystem:
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **storage_options)
    if not retries:
        # One attempt each in s3fs and botocore: a cut then fails at once, with the
        # error of the cut itself rather than of the last retry against a dead network.
        fs.retries = 1
        fs.config_kwargs = {"retries": {"max_attempts": 1, "mode": "standard"}}
    return fs


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(20 * MB)


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[CuttingProxy]:
    with CuttingProxy(s3.host, s3.port) as p:
        yield p


def _key_exists(s3: S3Server, bucket: str, key: str) -> bool:
    try:
        s3.client().head_object(Bucket=bucket, Key=key)
    except BotoClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return False
        raise
    return True


# --------------------------------------------------------------------------- server


def test_server_is_a_separate_process_on_loopback(s3: S3Server) -> None:
    assert s3.endpoint_url == f"http://127.0.0.1:{s3.port}"
    assert s3.pid != os.getpid() and s3.alive()
    assert "moto.server" in " ".join(psutil.Process(s3.pid).cmdline())
    assert s3.storage_options()["endpoint_url"] == s3.endpoint_url
    assert s3.storage_options(endpoint_url="http://127.0.0.1:1")["endpoint_url"] == (
        "http://127.0.0.1:1"
    )


def test_put_read_list_delete(s3_bucket: S3Bucket) -> None:
    fs = _fs(s3_bucket.storage_options)
    uri = f"{s3_bucket.uri}/runs/1/model.bin"
    with fsspec.open(uri, "wb", **s3_bucket.storage_options) as f:
        f.write(b"weights")
    fs.pipe(f"{s3_bucket.uri}/runs/1/metrics.json", b"{}")

    assert fs.cat(uri) == b"weights"
    with fsspec.open(uri, "rb", **s3_bucket.storage_options) as f:
        assert f.read() == b"weights"
    assert fs.ls(s3_bucket.uri) == [f"{s3_bucket.name}/runs"]
    assert sorted(fs.find(s3_bucket.uri)) == [
        f"{s3_bucket.name}/runs/1/metrics.json",
        f"{s3_bucket.name}/runs/1/model.bin",
    ]
    assert fs.info(uri)["size"] == len(b"weights")

    fs.rm(uri)
    assert not fs.exists(uri)
    assert fs.find(s3_bucket.uri) == [f"{s3_bucket.name}/runs/1/metrics.json"]


def test_each_test_gets_a_fresh_bucket(s3: S3Server, s3_bucket: S3Bucket) -> None:
    assert s3_bucket.uri.startswith("s3://b-")
    assert _fs(s3_bucket.storage_options).find(s3_bucket.uri) == []
    with pytest.raises(ValueError, match="already exists"):
        s3.create_bucket(s3_bucket.name)
    with pytest.raises(ValueError, match="invalid bucket name"):
        s3.create_bucket("Not_A_Bucket")


def test_multipart_upload_of_20_mb(
    s3: S3Server, s3_bucket: S3Bucket, payload: bytes, tmp_path: Path
) -> None:
    src = tmp_path / "blob"
    src.write_bytes(payload)
    fs = _fs(s3_bucket.storage_options)
    uri = f"{s3_bucket.uri}/blobs/big"

    fs.put_file(str(src), uri, chunksize=5 * MB)  # S3's smallest part size

    head = s3.client().head_object(Bucket=s3_bucket.name, Key="blobs/big")
    assert head["ContentLength"] == len(payload)
    assert head["ETag"].strip('"').endswith("-4")  # a multipart ETag: <md5 of md5s>-<parts>
    assert hashlib.sha256(fs.cat(uri)).digest() == hashlib.sha256(payload).digest()
    assert s3.client().list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []


def test_list_multipart_uploads_shows_unfinished_uploads(s3: S3Server, s3_bucket: S3Bucket) -> None:
    client = s3.client()
    upload = client.create_multipart_upload(Bucket=s3_bucket.name, Key="half")
    client.upload_part(
        Bucket=s3_bucket.name,
        Key="half",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"x" * (5 * MB),
    )

    uploads = client.list_multipart_uploads(Bucket=s3_bucket.name)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("half", upload["UploadId"])]
    assert not _key_exists(s3, s3_bucket.name, "half")

    client.abort_multipart_upload(Bucket=s3_bucket.name, Key="half", UploadId=upload["UploadId"])
    assert client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []


def test_if_none_match_refuses_to_overwrite(s3: S3Server, s3_bucket: S3Bucket) -> None:
    client = s3.client()
    client.put_object(Bucket=s3_bucket.name, Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(BotoClientError, match="PreconditionFailed"):
        client.put_object(Bucket=s3_bucket.name, Key="k", Body=b"second", IfNoneMatch="*")

    upload = client.create_multipart_upload(Bucket=s3_bucket.name, Key="k")
    part = client.upload_part(
        Bucket=s3_bucket.name, Key="k", UploadId=upload["UploadId"], PartNumber=1, Body=b"third"
    )
    with pytest.raises(BotoClientError, match="PreconditionFailed"):
        client.complete_multipart_upload(
            Bucket=s3_bucket.name,
            Key="k",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
            IfNoneMatch="*",
        )
    assert client.get_object(Bucket=s3_bucket.name, Key="k")["Body"].read() == b"first"


def test_stop_is_idempotent_and_harmless_after_the_server_died(tmp_path: Path) -> None:
    base = tmp_path / "servers"
    first = start_s3(base)
    second = start_s3(base)
    try:
        assert first.port != second.port
        psutil.Process(first.pid).kill()
        psutil.Process(first.pid).wait(30)
        first.stop()
        first.stop()
        assert not first.alive()
        assert not first.log_file.exists()  # run dir deleted
        assert second.alive()
    finally:
        first.stop()
        second.stop()
    assert not second.alive()
    assert list(base.iterdir()) == []


def test_next_start_kills_a_server_whose_owner_died(tmp_path: Path) -> None:
    # The owner dies through os._exit(), which skips atexit as a killed pytest would.
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(s3_server.__file__).parent)!r})
        from pathlib import Path
        from s3_server import start_s3
        server = start_s3(Path({str(tmp_path / "orphan")!r}))
        print(server.pid, flush=True)
        os._exit(0)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    orphan = psutil.Process(int(out.stdout.split()[-1]))
    assert orphan.is_running()

    server = start_s3(tmp_path / "next")
    try:
        orphan.wait(30)  # raises psutil.TimeoutExpired if start_s3 did not kill it
        assert list((tmp_path / "orphan").iterdir()) == []
    finally:
        server.stop()


# --------------------------------------------------------------------------- proxy


def test_proxy_forwards_and_counts(
    s3: S3Server, s3_bucket: S3Bucket, proxy: CuttingProxy, payload: bytes
) -> None:
    fs = _fs(s3.storage_options(endpoint_url=proxy.endpoint_url))
    uri = f"{s3_bucket.uri}/through-proxy"
    fs.pipe(uri, payload)
    assert fs.cat(uri) == payload
    assert proxy.bytes_forwarded(Direction.CLIENT_TO_SERVER) > len(payload)
    assert proxy.bytes_forwarded(Direction.SERVER_TO_CLIENT) > len(payload)
    assert proxy.connections >= 1
    assert proxy.connections_cut == 0 and not proxy.cut_happened


def test_download_cut_at_half_raises_and_the_next_attempt_completes(
    s3: S3Server, s3_bucket: S3Bucket, proxy: CuttingProxy, payload: bytes, tmp_path: Path
) -> None:
    _fs(s3_bucket.storage_options).pipe(f"{s3_bucket.uri}/blob", payload)
    fs = _fs(s3.storage_options(endpoint_url=proxy.endpoint_url), retries=False)
    uri = f"{s3_bucket.uri}/blob"

    proxy.cut_after(Direction.SERVER_TO_CLIENT, len(payload) // 2)
    with pytest.raises(TRANSFER_ERRORS):
        fs.cat(uri)
    assert proxy.wait_cut(timeout=0)
    # The network stays down until pass_all(). (Had the cut hit get_file mid-body instead,
    # s3fs would leave the truncated part at the local path: callers must verify.)
    with pytest.raises(TRANSFER_ERRORS):
        fs.get_file(uri, str(tmp_path / "copy"))
    forwarded = proxy.bytes_forwarded(Direction.SERVER_TO_CLIENT)
    assert len(payload) // 2 <= forwarded < len(payload)

    proxy.pass_all()
    assert fs.cat(uri) == payload


def test_download_cut_once_is_retried_by_the_client(
    s3: S3Server, s3_bucket: S3Bucket, proxy: CuttingProxy, payload: bytes
) -> None:
    _fs(s3_bucket.storage_options).pipe(f"{s3_bucket.uri}/blob", payload)
    fs = _fs(s3.storage_options(endpoint_url=proxy.endpoint_url))  # s3fs's default retries

    proxy.cut_after(Direction.SERVER_TO_CLIENT, len(payload) // 2, once=True)
    assert fs.cat(f"{s3_bucket.uri}/blob") == payload
    assert proxy.cut_happened and proxy.connections_cut >= 1


def test_upload_cut_at_half_leaves_no_object(
    s3: S3Server, s3_bucket: S3Bucket, proxy: CuttingProxy, payload: bytes
) -> None:
    fs = _fs(s3.storage_options(endpoint_url=proxy.endpoint_url), retries=False)

    proxy.cut_after(Direction.CLIENT_TO_SERVER, len(payload) // 2)
    with pytest.raises(TRANSFER_ERRORS):
        fs.pipe(f"{s3_bucket.uri}/blob", payload)
    assert proxy.wait_cut(timeout=0)

    assert not _key_exists(s3, s3_bucket.name, "blob")
    assert s3.client().list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []


def test_multipart_upload_cut_at_half_leaves_an_orphaned_upload(
    s3: S3Server, s3_bucket: S3Bucket, proxy: CuttingProxy, payload: bytes, tmp_path: Path
) -> None:
    # s3fs aborts a failed multipart upload, but the abort cannot get through a network
    # that is still down: the parts stay on the server until someone aborts them (R11's gc).
    src = tmp_path / "blob"
    src.write_bytes(payload)
    fs = _fs(s3.storage_options(endpoint_url=proxy.endpoint_url), retries=False)

    proxy.cut_after(Direction.CLIENT_TO_SERVER, len(payload) // 2)
    with pytest.raises(TRANSFER_ERRORS):
        fs.put_file(str(src), f"{s3_bucket.uri}/blob", chunksize=5 * MB)

    assert not _key_exists(s3, s3_bucket.name, "blob")
    uploads = s3.client().list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", [])
    assert [u["Key"] for u in uploads] == ["blob"]


def test_proxy_stop_resets_open_connections_and_leaves_no_thread(s3: S3Server) -> None:
    proxy = CuttingProxy(s3.host, s3.port).start()
    idle = socket.create_connection(("127.0.0.1", proxy.port), timeout=30)
    try:
        idle.sendall(b"GET / HTTP/1.1\r\n")  # half a request: the connection stays open
        proxy.stop()
        proxy.stop()
        assert [t for t in threading.enumerate() if t.name.startswith("CuttingProxy")] == []
        # The client sees the connection end (EOF or RST) instead of hanging (30 s timeout).
        with contextlib.suppress(ConnectionResetError):
            while idle.recv(65536):
                pass
    finally:
        idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
