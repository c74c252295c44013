"""``loopml push`` / ``loopml pull`` as a user runs them, against the loopback S3 server.

The remote is ``[remote]`` in the project's ``loopml.toml``; blobs are stored in-process
through ``Client`` and then moved by the real ``loopml`` console script.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _cli_helpers import assert_error, cli, cli_json

from cli_runner import run_cli
from loopml.config import load_settings
from loopml.tracking.client import Client
from net_proxy import CuttingProxy, Direction
from s3_server import S3Bucket, S3Server


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def configure(project: Path, url: str, options: dict[str, Any]) -> None:
    lines = "".join(f"{k} = {_toml(v)}\n" for k, v in options.items())
    (project / "loopml.toml").write_text(
        f'[project]\nname = "t"\n[remote]\nurl = {_toml(url)}\n[remote.options]\n{lines}'
    )


def store(project: Path, *values: bytes) -> list[str]:
    client = Client(load_settings(project)).open()
    try:
        return [client.store_value(v).digest for v in values]
    finally:
        client.close()


def keys(s3: S3Server, bucket: S3Bucket) -> list[str]:
    found = s3.client().list_objects_v2(Bucket=bucket.name).get("Contents", [])
    return sorted(o["Key"] for o in found)


def key_of(digest: str) -> str:
    return f"p/objects/{digest[:2]}/{digest[2:]}"


def test_push_and_pull_round_trip(project: Path, s3: S3Server, s3_bucket: S3Bucket) -> None:
    configure(project, f"{s3_bucket.uri}/p", s3_bucket.storage_options)
    digests = store(project, b"first" * 100, os.urandom(50_000))

    planned = cli_json(project, "push", "--dry-run")
    assert planned["dry_run"] is True
    assert sorted(t["digest"] for t in planned["transferred"]) == sorted(digests)
    assert keys(s3, s3_bucket) == []

    out = cli(project, "push").stdout
    assert "Pushed 2 blobs" in out and f"to {s3_bucket.uri}/p" in out
    assert keys(s3, s3_bucket) == sorted(key_of(d) for d in digests)
    again = cli_json(project, "push")
    assert again["transferred"] == [] and again["in_place"] == 2

    shutil.rmtree(project / ".loopml" / "blobs" / "objects")
    assert cli_json(project, "pull", "--dry-run")["bytes"] == 500 + 50_000
    assert not (project / ".loopml" / "blobs" / "objects").exists()
    out = cli(project, "pull").stdout
    assert "Pulled 2 blobs" in out
    assert cli(project, "artifacts", "get", digests[0][:12], "-o", "first.bin")
    assert (project / "first.bin").read_bytes() == b"first" * 100


def test_pull_names_a_blob_corrupted_on_the_remote(
    project: Path, s3: S3Server, s3_bucket: S3Bucket
) -> None:
    configure(project, f"{s3_bucket.uri}/p", s3_bucket.storage_options)
    (digest,) = store(project, b"precious" * 100)
    cli(project, "push")
    s3.client().put_object(Bucket=s3_bucket.name, Key=key_of(digest), Body=b"pr3cious" * 100)
    shutil.rmtree(project / ".loopml" / "blobs" / "objects")

    result = run_cli("pull", cwd=project, env={"LOOPML_STORE_URI": "", "LOOPML_ARTIFACTS_URI": ""})
    assert_error(result, "1 blob could not be pulled", digest, "corrupted on the remote")
    assert "loopml push" in result.stderr
    assert not (project / ".loopml" / "blobs" / "objects" / digest[:2] / digest[2:]).exists()


@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        ('[project]\nname = "t"\n', ["No remote configured", "[remote]", "loopml.toml"]),
        ('[remote]\nurll = "s3://b"\n', ["Unknown key 'urll' in [remote]", "Did you mean 'url'?"]),
    ],
)
def test_remote_config_errors(project: Path, toml: str, needles: list[str]) -> None:
    (project / "loopml.toml").write_text(toml)
    for command in ("push", "pull"):
        assert_error(run_cli(command, cwd=project), *needles)


def test_an_unreachable_remote_is_an_error(project: Path, s3_bucket: S3Bucket) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = {**s3_bucket.storage_options, "endpoint_url": f"http://127.0.0.1:{port}"}
    configure(project, f"{s3_bucket.uri}/p", options)
    store(project, b"x")
    assert_error(run_cli("push", cwd=project), "Cannot reach the remote", f"127.0.0.1:{port}")


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[CuttingProxy]:
    with CuttingProxy(s3.host, s3.port) as p:
        yield p


def test_an_interrupted_push_resumes(
    project: Path, s3: S3Server, s3_bucket: S3Bucket, proxy: CuttingProxy
) -> None:
    options = s3.storage_options(endpoint_url=proxy.endpoint_url)
    configure(project, f"{s3_bucket.uri}/p", options)
    size = 3 * 2**20
    (digest,) = store(project, os.urandom(size))

    proxy.cut_after(Direction.CLIENT_TO_SERVER, size // 2)
    assert_error(run_cli("push", cwd=project), digest, "run `loopml push` again")
    assert proxy.cut_happened
    assert keys(s3, s3_bucket) == []

    proxy.pass_all()
    report = cli_json(project, "push")
    assert [t["digest"] for t in report["transferred"]] == [digest]
    assert keys(s3, s3_bucket) == [key_of(digest)]
