"""R11: push and pull of 20 artifacts through a proxy that cuts the connection mid-transfer.

Do: 20 artifacts from 1 KiB to 32 MiB (soak, ``LOOPML_SOAK=1``: to 300 MiB) are pushed to a
real S3 server on loopback (moto) and pulled back through :class:`net_proxy.CuttingProxy`,
which resets every connection once 10 %, 50 % and 99 % of the payload has passed (counted
from the first attempt: each rerun resumes and is cut again further on) and keeps the
network down until that attempt has failed. Blobs of 16 MiB and more go up as
multipart uploads, so a cut leaves some behind (their abort cannot get through either).

Pass: after every cut, no object exists at a digest key unless it is complete and hashes
to that digest; no local blob exists unless it does either, and no temp file is left; the
attempt after the last cut completes, leftover multipart uploads or not, and a later
push finds nothing to do; after ``loopml gc`` the bucket's ``ListMultipartUploads`` is
empty, and gc touches only uploads under the remote's ``objects/``. (moto dates every
upload 2010-11-10, so the grace period cannot be checked against it.)

Report: bytes sent again after each cut as a share of the payload, and the multipart
uploads the cut left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loopml.config import load_settings
from loopml.errors import RemoteError
from loopml.tracking.client import Client
from net_proxy import CuttingProxy, Direction
from s3_server import S3Bucket, S3Server

SOAK = bool(os.environ.get("LOOPML_SOAK"))  # soak size on demand: LOOPML_SOAK=1 pytest …
COUNT = 20
BIGGEST = (300 if SOAK else 32) * 2**20
# 1 KiB, then evenly spaced on a log scale up to BIGGEST.
SIZES = [round(1024 * (BIGGEST / 1024) ** (i / (COUNT - 1))) for i in range(COUNT)]
CUTS = (0.10, 0.50, 0.99)  # of the payload, counted from the first attempt
PREFIX = "r11"


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[CuttingProxy]:
    with CuttingProxy(s3.host, s3.port) as p:
        yield p


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # a TOML basic string for the ASCII values used here


def _configure(project: Path, bucket: S3Bucket, endpoint: str) -> Client:
    # One attempt per request: the cut network stays down until the attempt has failed,
    # so botocore's retries (3 attempts with backoff) would only add ~2 s per blob.
    retries = {"mode": "standard", "total_max_attempts": 1}
    options = {
        **bucket.storage_options,
        "endpoint_url": endpoint,
        "config_kwargs": {"retries": retries},
    }
    lines = "".join(f"{k} = {_toml(v)}\n" for k, v in options.items())
    (project / "loopml.toml").write_text(
        f'[project]\nname = "r11"\n[remote]\nurl = "{bucket.uri}/{PREFIX}"\n'
        f"[remote.options]\n{lines}"
    )
    return Client(load_settings(project)).open()


def _remote_objects(s3: S3Server, bucket: S3Bucket) -> dict[str, bytes]:
    """Every object at a digest key, read directly from the server (not through the proxy)."""
    client = s3.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket.name, Prefix=f"{PREFIX}/"
    ):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket.name, Key=obj["Key"])["Body"].read()
            found[obj["Key"]] = body
    return found


def _uploads(s3: S3Server, bucket: S3Bucket) -> int:
    return len(s3.client().list_multipart_uploads(Bucket=bucket.name).get("Uploads", []))


def _empty_remote(s3: S3Server, bucket: S3Bucket) -> None:
    """Delete the remote's objects (not its leftover uploads): the next round starts bare."""
    client = s3.client()
    keys = [{"Key": k} for k in _remote_objects(s3, bucket)]
    if keys:
        client.delete_objects(Bucket=bucket.name, Delete={"Objects": keys, "Quiet": True})


def _assert_remote_whole(objects: dict[str, bytes], digests: set[str]) -> None:
    for key, body in objects.items():
        parts = key.split("/")
        assert parts[:2] == [PREFIX, "objects"] and len(parts) == 4, key
        digest = parts[2] + parts[3]
        assert digest in digests, f"unexpected object {key}"
        assert hashlib.sha256(body).hexdigest() == digest, f"partial object visible at {key}"


def _assert_local_whole(blobs: Path, digests: set[str]) -> int:
    """Every local blob hashes to its name; no temp file is left. Returns how many."""
    found = [p for p in (blobs / "objects").rglob("*") if p.is_file()]
    for path in found:
        digest = path.parent.name + path.name
        assert digest in digests
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"truncated {path}"
    tmp = blobs / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == [], "temp files left behind"
    return len(found)


def _cut_attempts(
    proxy: CuttingProxy, direction: Direction, total: int, attempt: Callable[[], object]
) -> Iterator[int]:
    """Run ``attempt`` once per cut, each cut when 10 %, 50 %, 99 % of ``total`` has passed.

    The marks count from the first attempt, so each attempt after a cut resumes and is cut
    again further on. Yields after each cut (network still down), then passes everything
    and returns. The caller runs the attempt that completes.
    """
    start = proxy.bytes_forwarded(direction)
    for share in CUTS:
        passed = proxy.bytes_forwarded(direction) - start
        proxy.cut_after(direction, max(0, int(share * total) - passed))
        with pytest.raises(RemoteError) as caught:
            attempt()
        assert proxy.cut_happened
        assert (
            f"run `loopml {'push' if direction is Direction.CLIENT_TO_SERVER else 'pull'}` again"
            in str(caught.value)
        )
        assert caught.value.report.failed, "the cut blobs are named"  # type: ignore[attr-defined]
        yield len(caught.value.report.transferred)  # type: ignore[attr-defined]
    proxy.pass_all()


def test_r11_interrupted_push_and_pull(
    project: Path, s3: S3Server, s3_bucket: S3Bucket, proxy: CuttingProxy
) -> None:
    client = _configure(project, s3_bucket, proxy.endpoint_url)
    digests = {client.store_value(os.urandom(size)).digest for size in SIZES}
    total = sum(SIZES)
    blobs = project / ".loopml" / "blobs"

    # --- push: cut three times, then complete ----------------------------------------
    before = proxy.bytes_forwarded(Direction.CLIENT_TO_SERVER)
    orphans = []
    for _sent in _cut_attempts(proxy, Direction.CLIENT_TO_SERVER, total, client.push):
        _assert_remote_whole(_remote_objects(s3, s3_bucket), digests)
        orphans.append(_uploads(s3, s3_bucket))
    report = client.push()
    assert report.ok
    assert {d for d, _ in report.transferred} | {d for d, _ in report.skipped} == digests
    objects = _remote_objects(s3, s3_bucket)
    _assert_remote_whole(objects, digests)
    assert len(objects) == COUNT
    sent = proxy.bytes_forwarded(Direction.CLIENT_TO_SERVER) - before
    left = _uploads(s3, s3_bucket)

    # --- pull into an empty store: cut three times, then complete ---------------------
    shutil.rmtree(blobs / "objects")
    before = proxy.bytes_forwarded(Direction.SERVER_TO_CLIENT)
    installed = []
    for _received in _cut_attempts(proxy, Direction.SERVER_TO_CLIENT, total, client.pull):
        installed.append(_assert_local_whole(blobs, digests))
    assert installed[-1] < COUNT
    assert client.pull().ok
    assert _assert_local_whole(blobs, digests) == COUNT
    received = proxy.bytes_forwarded(Direction.SERVER_TO_CLIENT) - before

    # Push aborts leftover uploads at the keys it sends again; any other (say, at a key
    # whose object completed before its answer was cut) is gc's.
    gc = client.gc(grace_s=0)
    assert not gc.warnings
    assert _uploads(s3, s3_bucket) == 0
    later = client.push()
    assert later.ok and later.transferred == [], "nothing left to resume, nothing blocked"

    # Sent bytes include request headers and read-back requests, received bytes the
    # answers' headers: a few KiB on top of the payload.
    print(
        f"\nR11: {COUNT} blobs, {total / 2**20:.1f} MiB (1 KiB to {BIGGEST / 2**20:.0f} MiB), "
        f"cut at {', '.join(f'{c:.0%}' for c in CUTS)} of the bytes\n"
        f"  push: re-sent {(sent - total) / total:.1%} of the payload; multipart uploads "
        f"left by each cut {orphans}, after the completing push {left}, after gc 0 "
        f"(gc aborted {len(gc.uploads)})\n"
        f"  pull: re-received {(received - total) / total:.1%} of the payload; blobs "
        f"installed (all verified) after each cut {installed} of {COUNT}"
    )


def test_r11_gc_aborts_leftover_uploads(project: Path, s3: S3Server, s3_bucket: S3Bucket) -> None:
    client = _configure(project, s3_bucket, s3.endpoint_url)
    key = f"{PREFIX}/objects/ab/{'c' * 62}"
    s3.client().create_multipart_upload(Bucket=s3_bucket.name, Key=key)
    s3.client().create_multipart_upload(Bucket=s3_bucket.name, Key="elsewhere/not-ours")

    dry = client.gc(grace_s=0, dry_run=True)
    assert len(dry.uploads) == 1 and f"{PREFIX}/objects/ab/" in dry.uploads[0]
    assert _uploads(s3, s3_bucket) == 2, "a dry run aborts nothing"
    assert len(client.gc(grace_s=0).uploads) == 1
    assert _uploads(s3, s3_bucket) == 1, "only uploads under the remote's objects/"
