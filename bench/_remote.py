"""``push``/``pull`` throughput to an S3-compatible server on loopback, against raw s3fs.

The server is moto's server mode (``tests/s3_server.py``), started once for the run. The
floor is s3fs itself moving the same bytes: ``put_file`` of each blob for push and
``get_file`` for pull, in the same run, to the same server. loopml's push also reads
every uploaded object back and hashes it (the verification), and pull hashes while it
downloads and installs the blob with fsync; the read-back's own cost is printed as a
share of the push time. moto is a Python server, so absolute MB/s are far below a real S3
endpoint; the ratios are what to read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _timing import Options, fmt_s, median, report, temp_project, time_call

TESTS = Path(__file__).resolve().parents[1] / "tests"


def _server(base: Path) -> Any:
    sys.path.insert(0, str(TESTS))
    try:
        from s3_server import start_s3
    finally:
        sys.path.remove(str(TESTS))
    return start_s3(base)


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return f'"{value}"'


def _put_all(fs: Any, bucket: str, blobs: list[Path]) -> None:
    for blob in blobs:
        fs.put_file(str(blob), f"{bucket}/raw/{blob.name}")


def _get_all(fs: Any, bucket: str, blobs: list[Path], out: Path) -> None:
    for blob in blobs:
        fs.get_file(f"{bucket}/raw/{blob.name}", str(out / blob.name))


def _read_back(fs: Any, bucket: str, digests: list[str]) -> None:
    """What push's verification does: read each uploaded object and hash it."""
    for d in digests:
        with fs.open(f"{bucket}/p/objects/{d[:2]}/{d[2:]}", "rb") as f:
            hashlib.file_digest(f, "sha256")


def bench_push_pull(opts: Options) -> None:
    from loopml.config import load_settings
    from loopml.tracking.client import Client

    blob_mib = opts.pick(16, 4)
    count = opts.pick(16, 4)
    total = blob_mib * count * 2**20
    repeats = opts.pick(3, 1)
    label = f"{total // 2**20} MiB in {count} blobs"
    base = Path(tempfile.mkdtemp(prefix="loopml-bench-s3-"))
    server = _server(base)
    try:
        options = server.storage_options()
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
        push_t, pull_t, put_t, get_t, back_t = [], [], [], [], []
        for rep in range(repeats):
            bucket = f"bench-{rep}"
            server.client().create_bucket(Bucket=bucket)
            with temp_project(f"remote-{rep}") as root:
                (root / "loopml.toml").write_text(
                    f'[project]\nname = "remote"\n[remote]\nurl = "s3://{bucket}/p"\n'
                    "[remote.options]\n"
                    + "".join(f"{k} = {_toml(v)}\n" for k, v in options.items()),
                    encoding="utf-8",
                )
                client = Client(load_settings(root)).open()
                digests = [
                    client.store_value(os.urandom(blob_mib * 2**20)).digest for _ in range(count)
                ]
                blobs = [Path(client.artifacts.blob_path(d)) for d in digests]
                push_t.append(time_call(client.push))
                put_t.append(time_call(lambda: _put_all(fs, bucket, blobs)))  # noqa: B023
                back_t.append(time_call(lambda: _read_back(fs, bucket, digests)))  # noqa: B023
                shutil.rmtree(root / ".loopml" / "blobs" / "objects")
                pull_t.append(time_call(client.pull))
                out = root / "raw-get"
                out.mkdir()
                get_t.append(time_call(lambda: _get_all(fs, bucket, blobs, out)))  # noqa: B023
                again = time_call(client.push)
                client.close()
        mb = total / 1e6
        push, put, pull, get = median(push_t), median(put_t), median(pull_t), median(get_t)
        report(
            opts,
            f"push of {label} to S3 on loopback (moto)",
            f"{mb / push:,.0f} MB/s ({fmt_s(push)}) vs raw s3fs put {mb / put:,.0f} MB/s "
            f"({fmt_s(put)}) = {put / push:.0%} of raw, read-back verification included "
            f"(median of {repeats})",
        )
        report(
            opts,
            f"push verification (read back + SHA-256) of {label}",
            f"{fmt_s(median(back_t))} = {median(back_t) / push:.0%} of push time",
        )
        report(
            opts,
            f"pull of {label} from S3 on loopback (moto)",
            f"{mb / pull:,.0f} MB/s ({fmt_s(pull)}) vs raw s3fs get {mb / get:,.0f} MB/s "
            f"({fmt_s(get)}) = {get / pull:.0%} of raw, hashed and fsync'ed (median of {repeats})",
        )
        report(
            opts,
            f"push again, nothing missing ({count} blobs)",
            f"{fmt_s(again)} (one size check per blob)",
        )
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
