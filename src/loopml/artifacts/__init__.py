"""Artifacts: content-addressed blobs plus the materializers that turn values into them.

Importing this package is cheap: pandas, numpy, pyarrow, polars, scikit-learn and fsspec
are imported only when a value of their kind is stored or a remote store is used.
"""

from __future__ import annotations

from loopml.artifacts.backend import BlobBackend, BlobInfo, FsspecBackend, LocalBackend
from loopml.artifacts.blobstore import ArtifactStore, StagedBlob, StoredArtifact, backend_for
from loopml.artifacts.materializers import (
    Materializer,
    MaterializerRegistry,
    materializer_for,
    materializer_named,
    register_materializer,
)

__all__ = [
    "ArtifactStore",
    "BlobBackend",
    "BlobInfo",
    "FsspecBackend",
    "LocalBackend",
    "Materializer",
    "MaterializerRegistry",
    "StagedBlob",
    "StoredArtifact",
    "backend_for",
    "materializer_for",
    "materializer_named",
    "register_materializer",
]
