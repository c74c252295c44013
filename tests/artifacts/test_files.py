"""Files and folders as artifacts: deterministic tars, symlink rules, safe extraction."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from loopml.artifacts import ArtifactStore
from loopml.errors import InvalidParameterError


def _make_folder(root: Path) -> Path:
    (root / "data" / "empty").mkdir(parents=True)
    (root / "data" / "b.csv").write_text("x,y\n1,2\n")
    (root / "data" / "a.txt").write_text("alpha")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / ("long-" + "n" * 120 + ".bin")).write_bytes(b"\x00" * 10)
    (root / "héllo wörld.txt").write_text("unicode")
    (root / "link-to-a").symlink_to(Path("data") / "a.txt")
    (root / "data" / "abs-link").symlink_to(root / "run.sh")  # absolute, but inside
    return root


def _tree(root: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = ("link", path.read_bytes() if path.exists() else None)
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = (path.read_bytes(), os.access(path, os.X_OK))
    return found


def test_folder_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    folder = _make_folder(tmp_path / "model")
    stored = store.put_file(folder)
    assert stored.materializer == "folder.tar" and stored.type_name == "pathlib.PosixPath"
    assert stored.metadata == {"name": "model", "files": 5, "bytes": 5 + 8 + 18 + 10 + 7}
    loaded = store.get_value(stored.digest, stored.materializer, stored.metadata)
    assert loaded.name == "model" and loaded != folder
    assert _tree(loaded) == _tree(folder)
    assert os.readlink(loaded / "data" / "abs-link") == "../run.sh", (
        "inside links are stored relative"
    )
    exported = store.export(stored.digest, stored.materializer, tmp_path / "out")
    assert _tree(exported) == _tree(folder)


def test_put_value_with_a_path(store: ArtifactStore, tmp_path: Path) -> None:
    folder = _make_folder(tmp_path / "f")
    assert store.put_value(folder).digest == store.put_file(folder).digest
    assert store.put_value(folder / "run.sh").materializer == "file"


def test_same_content_same_digest(store: ArtifactStore, tmp_path: Path) -> None:
    first = store.put_file(_make_folder(tmp_path / "one"))
    time.sleep(0.01)
    second_root = _make_folder(tmp_path / "two")
    os.utime(second_root / "data" / "a.txt", (1, 1))
    os.chmod(second_root / "data" / "b.csv", 0o600)  # only the executable bit is kept
    assert store.put_file(second_root).digest == first.digest
    with tarfile.open(store.local_path(first.digest)) as tar:
        members = tar.getmembers()
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    (second_root / "data" / "a.txt").write_text("ALPHA")
    assert store.put_file(second_root).digest != first.digest


def test_entries_are_sorted_depth_first(store: ArtifactStore, tmp_path: Path) -> None:
    root = tmp_path / "s"
    for name in ("b", "a/z", "a/c", "c"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    with tarfile.open(store.local_path(store.put_file(root).digest)) as tar:
        assert tar.getnames() == ["a", "a/c", "a/z", "b", "c"]


def test_symlink_outside_the_folder_is_refused(store: ArtifactStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not ship")
    folder = tmp_path / "leaky"
    folder.mkdir()
    (folder / "ok.txt").write_text("fine")
    (folder / "escape").symlink_to("../secret.txt")
    with pytest.raises(
        InvalidParameterError,
        match="symlink 'escape' points to '../secret.txt', outside the folder",
    ):
        store.put_file(folder)
    (folder / "escape").unlink()
    (folder / "abs").symlink_to(secret)
    with pytest.raises(InvalidParameterError, match="outside the folder"):
        store.put_value(folder)
    assert list(store.iter_digests()) == [] and list(store.iter_temp()) == []


def test_special_files_are_refused(store: ArtifactStore, tmp_path: Path) -> None:
    folder = tmp_path / "fifo"
    folder.mkdir()
    os.mkfifo(folder / "pipe")
    with pytest.raises(InvalidParameterError, match="'pipe' is a FIFO"):
        store.put_file(folder)


def test_folder_given_through_a_symlink(store: ArtifactStore, tmp_path: Path) -> None:
    real = _make_folder(tmp_path / "real")
    (tmp_path / "alias").symlink_to(real)
    assert store.put_file(tmp_path / "alias").digest == store.put_file(real).digest


def test_empty_folder(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    stored = store.put_file(tmp_path / "empty")
    assert stored.metadata["files"] == 0
    assert list(store.get_value(stored.digest, "folder.tar", stored.metadata).iterdir()) == []


def _evil_tar(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return raw.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("../escape.txt"),
        _member("link", tarfile.SYMTYPE, "../../outside"),
        _member("link", tarfile.SYMTYPE, "/etc/passwd"),
        _member("hard", tarfile.LNKTYPE, "../outside"),
        _member("dev", tarfile.CHRTYPE),
    ],
)
def test_export_refuses_hostile_archives(
    store: ArtifactStore, tmp_path: Path, member: tarfile.TarInfo
) -> None:
    stored = store.put_bytes(_evil_tar(member, b"pwned"))
    target = tmp_path / "target" / "inner"
    with pytest.raises(InvalidParameterError, match="Refused to extract"):
        store.export(stored.digest, "folder.tar", target)
    assert not (tmp_path / "target" / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()


def test_export_refuses_absolute_member_names(store: ArtifactStore, tmp_path: Path) -> None:
    """loopml's own folder tars never hold one: such an archive is foreign, so it is refused."""
    stored = store.put_bytes(_evil_tar(_member("/abs/escape.txt"), b"contained"))
    with pytest.raises(InvalidParameterError, match="absolute"):
        store.export(stored.digest, "folder.tar", tmp_path / "target")
    assert not (tmp_path / "target").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_export_folder_onto_a_file_is_refused(store: ArtifactStore, tmp_path: Path) -> None:
    stored = store.put_file(_make_folder(tmp_path / "m"))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidParameterError, match="it is a file"):
        store.export(stored.digest, "folder.tar", tmp_path / "afile")


def test_loaded_file_name_cannot_escape(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("content")
    stored = store.put_file(tmp_path / "f.txt")
    loaded = store.get_value(stored.digest, "file", {"name": "../../etc/passwd"})
    assert loaded.name == "passwd" and loaded.read_text() == "content"
    assert loaded.parent == store.backend.root / "unpacked" / stored.digest  # type: ignore[attr-defined]
