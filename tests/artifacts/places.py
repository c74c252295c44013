"""Where a store under test keeps its blobs, and how to reach them behind the store's back.

The contract suite (``test_contract.py``) runs each test on a local folder and on
``s3://<fresh bucket>/prefix`` on the test S3 server (``tests/s3_server.py``). A
:class:`Place` opens stores on that location, each with its own cache folder (as a second
machine would), and changes the stored objects directly, the way bit rot, a truncating
tool or an ``aws s3 rm`` would: a local file, or an S3 object through botocore.

The S3 buckets have versioning on, so every write of an object is visible as a new
version: :meth:`Place.version` proves that a de-duplicated put wrote nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.artifacts import ArtifactStore
from s3_server import S3Server


def key_of(digest: str) -> str:
    return f"objects/{digest[:2]}/{digest[2:]}"


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # a TOML basic string for the ASCII values used here


@dataclass
class Place:
    """An artifact store location under test: ``kind`` is ``"local"`` or ``"s3"``."""

    kind: str
    uri: str
    tmp: Path
    storage_options: dict[str, Any] = field(default_factory=dict)
    s3: S3Server | None = None
    bucket: str = ""
    prefix: str = ""
    _opened: int = 0

    @property
    def remote(self) -> bool:
        return self.kind != "local"

    def open(self) -> ArtifactStore:
        """A new store on this location with its own, empty cache folder."""
        self._opened += 1
        return ArtifactStore(
            self.uri,
            storage_options=self.storage_options,
            cache_dir=self.tmp / f"cache-{self._opened}",
        )

    def configure(self, project: Path) -> None:
        """Point the project's ``loopml.toml`` here: ``[store] artifacts`` and ``options``."""
        table = {"artifacts": self.uri, "options": self.storage_options}
        lines = [f"{k} = {_toml(v)}" for k, v in table.items() if v]
        (project / "loopml.toml").write_text('[project]\nname = "t"\n[store]\n' + "\n".join(lines))

    def location(self, digest: str) -> str:
        """What error messages call the blob: its path, or its ``s3://`` URL."""
        return f"{self.uri}/{key_of(digest)}"

    def sibling(self) -> Place:
        """Another store location next to this one (a sibling folder or prefix)."""
        uri = f"{self.uri}-sibling"
        return Place(
            self.kind,
            uri,
            self.tmp,
            self.storage_options,
            self.s3,
            self.bucket,
            f"{self.prefix}-sibling",
        )

    # -- the stored objects, behind the store's back ------------------------------------

    def _s3_key(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    def read(self, digest: str) -> bytes | None:
        """The stored object's bytes, or None if there is none."""
        return self.read_key(key_of(digest))

    def read_key(self, key: str) -> bytes | None:
        if self.s3 is None:
            path = Path(self.uri) / key
            return path.read_bytes() if path.is_file() else None
        client = self.s3.client()
        try:
            got = client.get_object(Bucket=self.bucket, Key=self._s3_key(key))
        except client.exceptions.NoSuchKey:
            return None
        return got["Body"].read()  # type: ignore[no-any-return]

    def write_key(self, key: str, data: bytes) -> None:
        """Replace (or create) the object at ``key`` with ``data``."""
        if self.s3 is None:
            path = Path(self.uri) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                os.chmod(path, 0o644)  # blobs are read-only
            path.write_bytes(data)
            return
        self.s3.client().put_object(Bucket=self.bucket, Key=self._s3_key(key), Body=data)

    def overwrite(self, digest: str, data: bytes) -> None:
        self.write_key(key_of(digest), data)

    def flip(self, digest: str, offset: int = 3) -> None:
        """Flip one bit of the stored object (same size, other bytes)."""
        data = bytearray(self.read(digest) or b"")
        data[offset] ^= 0x01
        self.overwrite(digest, bytes(data))

    def truncate(self, digest: str) -> None:
        data = self.read(digest) or b""
        self.overwrite(digest, data[: len(data) // 2])

    def remove(self, digest: str) -> None:
        if self.s3 is None:
            (Path(self.uri) / key_of(digest)).unlink()
            return
        self.s3.client().delete_object(Bucket=self.bucket, Key=self._s3_key(key_of(digest)))

    def keys(self) -> list[str]:
        """Every object under this location, as keys relative to it (temp folder excluded)."""
        if self.s3 is None:
            root = Path(self.uri)
            found = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
            return sorted(k for k in found if k.startswith("objects/"))
        pages = self.s3.client().get_paginator("list_objects_v2")
        head = f"{self.prefix}/"
        return sorted(
            obj["Key"].removeprefix(head)
            for page in pages.paginate(Bucket=self.bucket, Prefix=head)
            for obj in page.get("Contents", [])
        )

    def version(self, digest: str) -> object:
        """Identity of the stored object: it changes whenever the object is written."""
        if self.s3 is None:
            st = os.stat(Path(self.uri) / key_of(digest))
            return st.st_ino, st.st_ctime_ns
        head = self.s3.client().head_object(Bucket=self.bucket, Key=self._s3_key(key_of(digest)))
        return head["VersionId"]

    def empty_versions(self) -> None:
        """Delete every version and delete marker, so the bucket itself can be deleted."""
        if self.s3 is None:
            return
        client = self.s3.client()
        for page in client.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for kind in ("Versions", "DeleteMarkers")
                for v in page.get(kind, [])
            ]
            if doomed:
                client.delete_objects(Bucket=self.bucket, Delete={"Objects": doomed, "Quiet": True})
