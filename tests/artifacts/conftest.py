"""Fixtures for the artifact tests: a local store, a memory:// store, a clean registry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.artifacts import ArtifactStore
from loopml.artifacts.materializers import default_registry as registry


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
def memory_uri() -> Iterator[str]:
    """A fresh memory:// location, removed afterwards (fsspec's memory store is global)."""
    import fsspec

    uri = f"memory://loopml-test-{uuid.uuid4().hex}"
    yield uri
    fs = fsspec.filesystem("memory")
    path = uri.removeprefix("memory://")
    if fs.exists(path):
        fs.rm(path, recursive=True)


@pytest.fixture
def remote(memory_uri: str, tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(memory_uri, cache_dir=tmp_path / "cache")
