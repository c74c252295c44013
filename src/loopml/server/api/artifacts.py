"""Artifacts: list, metadata, download and lineage.

A digest in a path is checked before anything else: 64 lowercase hex, or a unique prefix
of at least 6 (what ``Client.artifact`` and ``loopml artifacts show`` accept). Nothing
from a request ever becomes a file path: the route looks the digest up in the metadata
store and the artifact store reads the blob under the *stored* digest, re-hashing it
first, so ``..``, encoded slashes, absolute paths and the like are refused with 422 (or
match no route: 404) and a corrupt blob is never served (503 naming the digest).
"""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from loopml.errors import IntegrityError, LoopmlError
from loopml.server.api.deps import Client
from loopml.server.api.limits import CappedRoute, Digest
from loopml.server.api.runs import LinkOut, link_out
from loopml.server.pages import Page, Paging, page, window

router = APIRouter(tags=["artifacts"], route_class=CappedRoute)

_CHUNK = 1 << 20
#: The media type of each built-in materializer's blob.
MEDIA_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "bytes": "application/octet-stream",
    "pandas.parquet": "application/vnd.apache.parquet",
    "polars.parquet": "application/vnd.apache.parquet",
    "numpy.npy": "application/x-npy",
    "folder.tar": "application/x-tar",
    "lightgbm.txt": "text/plain; charset=utf-8",
    "lightgbm.json": "application/json",
    "xgboost.ubj": "application/octet-stream",
    "sklearn.pickle": "application/x-python-pickle",
    "model.pickle": "application/x-python-pickle",
}
#: Types a ``file`` artifact may be served as (from its name); anything else, HTML, SVG
#: and scripts included, is served as bytes so a browser never renders it on our origin.
_PASSIVE_TYPES = frozenset(
    {
        "text/plain",
        "text/csv",
        "application/json",
        "application/pdf",
        "application/zip",
        "application/gzip",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
    }
)
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)


def _served_types() -> list[str]:
    """Every ``Content-Type`` a download can have (documented on the 200 answer)."""
    types = {t.split(";")[0] for t in MEDIA_TYPES.values()} | _PASSIVE_TYPES
    return sorted(types | {"application/octet-stream"})


class ArtifactOut(BaseModel):
    digest: str
    type: str
    materializer: str
    size: int
    media_type: str
    metadata: dict[str, Any]
    created_at: float


def media_type(materializer: str, filename: str) -> str:
    """The ``Content-Type`` of a blob stored by ``materializer``."""
    if materializer == "file":
        guessed = mimetypes.guess_type(filename)[0]
        if guessed in _PASSIVE_TYPES:
            return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed
        return "application/octet-stream"
    return MEDIA_TYPES.get(materializer, "application/octet-stream")


def filename(record: Any, extension: str) -> str:
    """A download name that is one safe path component on every OS (see ``disposition``)."""
    stored = record.metadata.get("name") if record.materializer == "file" else None
    text = os.path.basename(str(stored).replace("\\", "/")) if stored else ""
    text = re.sub(r"[^A-Za-z0-9._-]", "_", text).strip(". ")[:150]
    if not text or text.split(".")[0].lower() in _RESERVED:
        text = f"{record.digest[:12]}{extension}"
    return text


def artifact_out(record: Any) -> ArtifactOut:
    return ArtifactOut(
        digest=record.digest,
        type=record.type_name,
        materializer=record.materializer,
        size=record.size,
        media_type=media_type(record.materializer, filename(record, "")),
        metadata=record.metadata,
        created_at=record.created_at,
    )


@router.get("/artifacts", summary="Artifacts, newest first")
def list_artifacts(
    client: Client,
    paging: Paging,
    run: Annotated[
        str | None, Query(max_length=300, description="Only artifacts linked to this run.")
    ] = None,
) -> Page[ArtifactOut]:
    records = client.list_artifacts(limit=paging.fetch, offset=paging.offset, run=run)
    return page([artifact_out(r) for r in records], paging)


class ArtifactDetail(ArtifactOut):
    produced_by: list[LinkOut]
    read_by_runs: int


@router.get("/artifacts/{digest}", summary="One artifact: type, size, materializer, producer")
def get_artifact(client: Client, digest: Digest) -> ArtifactDetail:
    """Who produced (or logged) it, and how many runs read it (the list: ``/lineage``)."""
    record = client.artifact(digest)
    links = client.links(digest=record.digest)
    return ArtifactDetail(
        **artifact_out(record).model_dump(),
        produced_by=[link_out(lk) for lk in links if lk.direction != "input"],
        read_by_runs=len({lk.run_id for lk in links if lk.direction == "input"}),
    )


@router.get(
    "/artifacts/{digest}/content",
    summary="Download an artifact's bytes",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The blob; `Content-Type` follows the artifact's materializer.",
            "content": {t: {} for t in _served_types()},
        }
    },
)
def download(client: Client, digest: Digest) -> StreamingResponse:
    """The blob as stored (a folder as its tar), verified against its digest before the
    first byte is sent; ``Content-Type`` follows the materializer."""
    record = client.artifact(digest)
    try:
        extension = client.materializers.named(record.materializer).extension
    except LoopmlError:  # a user's materializer this server does not know: no extension
        extension = ""
    try:
        path = client.artifacts.local_path(record.digest)
        f = open(path, "rb")  # noqa: SIM115 - closed by the stream below
    except (IntegrityError, OSError):
        # The store's message names a server path; the client gets the digest and the fix.
        raise IntegrityError(
            f"Artifact {record.digest} is damaged or missing in the store, so it is not "
            "served. Run `loopml fsck` on the server to list damaged artifacts, and re-run "
            "the step that produced it."
        ) from None
    name = filename(record, extension)

    def chunks() -> Iterator[bytes]:
        with f:
            while chunk := f.read(_CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type=media_type(record.materializer, name),
        headers={
            "Content-Length": str(os.fstat(f.fileno()).st_size),
            "Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{record.digest}"',
        },
    )


class Lineage(BaseModel):
    """Where an artifact came from and where it went (what ``loopml lineage`` shows)."""

    artifact: ArtifactOut
    produced_by: list[LinkOut]
    inputs: list[LinkOut]
    consumed_by: Page[LinkOut]


@router.get("/artifacts/{digest}/lineage", summary="Upstream and downstream of an artifact")
def lineage(client: Client, digest: Digest, paging: Paging) -> Lineage:
    """``produced_by``: the runs and steps that wrote or logged it; ``inputs``: what those
    steps read; ``consumed_by`` (paginated): the steps that read it."""
    record = client.artifact(digest)
    links = client.links(digest=record.digest)
    producers = [lk for lk in links if lk.direction in ("output", "logged")]
    upstream: list[Any] = []
    for p in producers:
        if p.step_run_id:
            upstream += [
                lk
                for lk in client.links(run=p.run_id)
                if lk.step_run_id == p.step_run_id and lk.direction == "input"
            ]
    return Lineage(
        artifact=artifact_out(record),
        produced_by=[link_out(lk) for lk in producers],
        inputs=[link_out(lk) for lk in upstream],
        consumed_by=window([link_out(lk) for lk in links if lk.direction == "input"], paging),
    )
