"""Datasets: names with their newest version, a name's versions, one version in detail.

A version's detail carries its schema and statistics as stored when it was added (the
profile ``loopml data show`` prints), one entry per column and paginated, and its
validations. Nothing is computed per request: a version stored without a profile has
``profile: null``. Comparing two versions (``loopml data diff``) reads both tables whole,
so it is not a route.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from loopml.server.api.deps import Client
from loopml.server.api.limits import CappedRoute, Name
from loopml.server.pages import Page, Paging, page, window

router = APIRouter(tags=["data"], route_class=CappedRoute)

VERSION_PATTERN = r"^(latest|[0-9]{1,18}|[0-9a-f]{6,64})$"


class DatasetVersionOut(BaseModel):
    name: str
    version: int
    ref: str
    digest: str
    kind: str
    filename: str
    format: str
    size: int
    rows: int | None
    columns: int | None
    profile_digest: str | None
    source: str
    created_at: float


def version_out(v: Any) -> DatasetVersionOut:
    return DatasetVersionOut(
        name=v.name,
        version=v.number,
        ref=v.label,
        digest=v.digest,
        kind=v.kind,
        filename=v.filename,
        format=v.format,
        size=v.size,
        rows=v.rows,
        columns=v.columns,
        profile_digest=v.profile_digest,
        source=v.source,
        created_at=v.created_at,
    )


@router.get("/datasets", summary="Datasets with their newest version")
def list_datasets(client: Client, paging: Paging) -> Page[DatasetVersionOut]:
    return window([version_out(v) for v in client.datasets()], paging)


class VersionWithReaders(DatasetVersionOut):
    runs: list[str]
    validated: bool | None


@router.get("/datasets/{name}", summary="Every version of a dataset, oldest first")
def dataset_versions(client: Client, name: Name, paging: Paging) -> Page[VersionWithReaders]:
    """With the runs that read each version and whether its newest validation passed."""
    found = client.dataset_versions(name)
    if not found:
        client.dataset_version(name)  # raises the "no dataset named …" message
    shown = found[paging.offset : paging.offset + paging.fetch]
    readers = client.dataset_readers(shown)
    checks = client.dataset_validations(shown)
    items = [
        VersionWithReaders(
            **version_out(v).model_dump(),
            runs=readers.get(v.digest, []),
            validated=checks[v.label][-1].ok if checks.get(v.label) else None,
        )
        for v in shown
    ]
    return page(items, paging)


class ColumnOut(BaseModel):
    """One column's schema and summary statistics (null where they do not apply)."""

    name: str
    dtype: str
    kind: str
    count: int
    missing: int
    distinct: int | None
    min: Any
    max: Any
    mean: Any
    std: Any


class ValidationOut(BaseModel):
    schema_digest: str
    report_digest: str
    ok: bool
    errors: int
    warnings: int
    created_at: float


class DatasetDetail(DatasetVersionOut):
    runs: list[str]
    validations: list[ValidationOut]
    profile: Page[ColumnOut] | None


@router.get("/datasets/{name}/{version}", summary="One dataset version: schema and profile")
def dataset_version(
    client: Client,
    name: Name,
    version: Annotated[
        str,
        Path(
            pattern=VERSION_PATTERN,
            max_length=64,
            description="A version number, `latest`, or a digest (prefix of 6+).",
        ),
    ],
    paging: Paging,
) -> DatasetDetail:
    """``profile`` pages through the columns of the stored profile (null when none)."""
    v = client.dataset_version(f"{name}@{version}")
    profile = None
    if v.profile_digest is not None:
        stored = client.load_artifact(v.profile_digest)
        columns = [
            ColumnOut(**{k: c.get(k) for k in ColumnOut.model_fields})
            for c in stored.get("columns", [])
        ]
        profile = window(columns, paging)
    checks = client.dataset_validations([v]).get(v.label, [])
    return DatasetDetail(
        **version_out(v).model_dump(),
        runs=client.dataset_readers([v]).get(v.digest, []),
        validations=[
            ValidationOut(
                schema_digest=c.schema_digest,
                report_digest=c.report_digest,
                ok=c.ok,
                errors=c.errors,
                warnings=c.warnings,
                created_at=c.created_at,
            )
            for c in checks
        ],
        profile=profile,
    )
