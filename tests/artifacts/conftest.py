"""Fixtures for the artifact tests: a local store, the contract suite's places, a clean registry.

``any_place`` is parametrized over ``local`` (a folder) and ``s3`` (``s3://<fresh
bucket>/prefix`` on the test S3 server, a real moto server on 127.0.0.1): every test that
uses it is the contract both backends must keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from places import Place

from loopml.artifacts import ArtifactStore
from loopml.artifacts.materializers import default_registry as registry
from s3_server import S3Bucket, S3Server


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """Undo user materializer registrations made by a test."""
    types = {k: list(v) for k, v in registry._types.items()}
    named = dict(registry._named)
    yield
    registry._types.clear()
    registry._types.update(types)
    registry._named.clear()
    registry._named.update(named)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def s3_place(s3: S3Server, s3_bucket: S3Bucket, tmp_path: Path) -> Iterator[Place]:
    """Stores on ``s3://<fresh bucket>/prefix``, a versioned bucket on the test server."""
    s3.client().put_bucket_versioning(
        Bucket=s3_bucket.name, VersioningConfiguration={"Status": "Enabled"}
    )
    place = Place(
        "s3",
        f"{s3_bucket.uri}/prefix",
        tmp_path,
        s3_bucket.storage_options,
        s3,
        s3_bucket.name,
        "prefix",
    )
    yield place
    place.empty_versions()


@pytest.fixture(params=["local", "s3"])
def any_place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    """Each contract test runs on a local folder and on S3 (see the module doc)."""
    if request.param == "local":
        return Place("local", str(tmp_path / "artifacts"), tmp_path)
    return request.getfixturevalue("s3_place")  # type: ignore[no-any-return]


@pytest.fixture
def any_store(any_place: Place) -> ArtifactStore:
    """A store on ``any_place`` (local folder or S3), with its own cache folder."""
    return any_place.open()
