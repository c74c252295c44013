"""What the fsspec backend does only on S3: part sizes, and multipart uploads left behind.

Part sizes. s3fs's ``put_file`` sends a file smaller than two parts in one PUT (read whole
into memory) and a bigger one as a multipart upload, ``max_concurrency`` parts at a time,
each batch read into memory before it is sent. Its defaults (50 MiB parts, 10 at once)
put a blob of up to 100 MiB in memory in one piece, and up to 500 MiB of a bigger one;
``push`` moves several blobs at once, so that multiplies. 8 MiB parts, 4 at once, hold
at most 32 MiB per blob and were as fast on loopback (``bench/data.py --only remote``);
a cut costs at most the parts in flight, not the whole blob, once s3fs's own retry of
the part succeeds.

Leftover uploads. A multipart upload that is neither completed nor aborted stays on the
server, invisible to object listings (and billed, on AWS), until someone aborts it. s3fs
aborts its own upload when a part fails, but when the network is down that abort fails
too. So the next ``push`` aborts leftovers at the keys it is about to upload, and
``loopml gc`` aborts those older than its grace period (RELIABILITY.md R11). Neither can
expose a partial blob: an aborted upload never becomes an object.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

PART_SIZE = 8 << 20
PART_JOBS = 4
# A blob of at least this size goes up as a multipart upload (s3fs's rule, see above).
MULTIPART_FROM = 2 * PART_SIZE


@dataclass(frozen=True, slots=True)
class Upload:
    """An incomplete multipart upload: its key (relative to the backend), id and start."""

    key: str
    upload_id: str
    initiated: float | None


def put_options() -> dict[str, Any]:
    """Keyword arguments for s3fs's ``put_file``."""
    return {"chunksize": PART_SIZE, "max_concurrency": PART_JOBS}


def list_uploads(fs: Any, root: str, prefix: str) -> tuple[Upload, ...]:
    """Every incomplete multipart upload under ``root/prefix`` (``root`` = ``bucket/path``)."""
    bucket, _, base = root.partition("/")
    head = f"{base}/" if base else ""
    found: list[Upload] = []
    marker: dict[str, str] = {}
    while True:
        page = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=head + prefix, **marker)
        for upload in page.get("Uploads", []):
            started = upload.get("Initiated")
            found.append(
                Upload(
                    upload["Key"][len(head) :],
                    upload["UploadId"],
                    started.timestamp() if isinstance(started, datetime) else None,
                )
            )
        if not page.get("IsTruncated"):
            return tuple(found)
        marker = {
            "KeyMarker": page.get("NextKeyMarker", ""),
            "UploadIdMarker": page.get("NextUploadIdMarker", ""),
        }


def abort_upload(fs: Any, root: str, upload: Upload) -> None:
    """Abort one upload; one that is already gone (completed or aborted) is fine."""
    bucket, _, base = root.partition("/")
    key = f"{base}/{upload.key}" if base else upload.key
    try:
        fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload.upload_id)
    except FileNotFoundError:  # s3fs's translation of NoSuchUpload
        pass
