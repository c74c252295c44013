"""safe_extract: hostile tars are refused before anything is written; good tars round-trip."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from loopml.artifacts.materializers.files import write_tar
from loopml.artifacts.safetar import _open_dir, safe_extract
from loopml.errors import InvalidParameterError, StorageError

Member = tuple[tarfile.TarInfo, bytes | None]


def _m(
    name: str, kind: bytes = tarfile.REGTYPE, *, data: bytes = b"", link: str = "", mode: int = 0
) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.mode = mode or (0o755 if kind == tarfile.DIRTYPE else 0o644)
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    if "\x00" in name:
        info.pax_headers = {"path": name}  # a ustar name field would stop at the NUL
    return info, None


def _nul(name: str) -> Member:
    info, data = _m(name, data=b"x")
    info.pax_headers = {"path": name}
    return info, data


def _tar(path: Path, members: list[Member]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _listing(root: Path) -> dict[str, object]:
    """Every path under root (links not followed) with its type and file bytes."""
    found: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            full = Path(folder) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                found[rel] = ("link", os.readlink(full))
            elif full.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = (full.read_bytes(), stat.S_IMODE(full.stat().st_mode))
    return found


def _cve_2025_4517(dest: Path) -> list[Member]:
    # Adapted from CPython's test_realpath_limit_attack: nested long folder names reached
    # through a chain of symlinks, sized so that expanding the last link overflows PATH_MAX.
    # realpath then stops resolving, so "escape" looks inside to the old "data" filter while
    # the kernel follows it to dest's parent; a hard link and a file then write out there.
    steps = "abcdefghijklmnop"
    limit = os.pathconf(dest.parent, "PC_PATH_MAX")
    component = "d" * ((limit - len(str(dest)) - 1) // (len(steps) + 1))
    members, path = [], ""
    for step in steps:
        members.append(_m(os.path.join(path, component), tarfile.DIRTYPE, mode=0o777))
        members.append(_m(os.path.join(path, step), tarfile.SYMTYPE, link=component))
        path = os.path.join(path, component)
    linkpath = os.path.join(*steps, "l" * 254)
    members += [
        _m(linkpath, tarfile.SYMTYPE, link=os.path.join(*[".."] * len(steps))),
        _m("escape", tarfile.SYMTYPE, link=os.path.join(linkpath, "..")),
        _m("flaglink", tarfile.LNKTYPE, link="escape/flag"),
        _m("flaglink", data=b"overwrite"),
        _m("escape/newfile", data=b"new"),
    ]
    return members


HOSTILE: dict[str, tuple[Callable[[Path], list[Member]], str]] = {
    "cve-2025-4517 realpath limit": (_cve_2025_4517, "escape/newfile"),
    "dot-dot": (lambda d: [_m("../flag", data=b"evil")], "../flag"),
    "dot-dot inside a path": (lambda d: [_m("a/../../flag", data=b"evil")], "a/../../flag"),
    "dot-dot with backslashes": (lambda d: [_m("..\\flag", data=b"evil")], "..\\flag"),
    "absolute": (lambda d: [_m(str(d.parent / "flag"), data=b"evil")], "{parent}/flag"),
    "drive letter": (lambda d: [_m("C:/flag", data=b"evil")], "C:/flag"),
    "drive-relative": (lambda d: [_m("C:flag", data=b"evil")], "C:flag"),
    "unc": (lambda d: [_m("\\\\server\\share\\flag", data=b"evil")], "\\\\server\\share\\flag"),
    "nul byte": (lambda d: [_nul("ok\x00/../../flag")], "ok\x00/../../flag"),
    "empty name": (lambda d: [_m("", data=b"evil")], "''"),
    "file named dot": (lambda d: [_m(".", data=b"evil")], "'.'"),
    "symlink absolute": (
        lambda d: [_m("ln", tarfile.SYMTYPE, link=str(d.parent / "flag"))],
        "ln",
    ),
    "symlink relative outside": (lambda d: [_m("ln", tarfile.SYMTYPE, link="../flag")], "ln"),
    "symlink deep outside": (
        lambda d: [_m("x/y", tarfile.DIRTYPE), _m("x/y/ln", tarfile.SYMTYPE, link="../../../b")],
        "x/y/ln",
    ),
    "symlink empty target": (lambda d: [_m("ln", tarfile.SYMTYPE, link="")], "ln"),
    "symlink chain escapes when resolved": (
        lambda d: [_m("a", tarfile.SYMTYPE, link="."), _m("b", tarfile.SYMTYPE, link="a/..")],
        "'b'",
    ),
    "symlink through a case-folded link": (
        lambda d: [
            _m("sub/a", tarfile.SYMTYPE, link=".."),
            _m("x", tarfile.SYMTYPE, link="sub/A/../.."),
        ],
        "'x'",
    ),
    "write through a symlink member": (
        lambda d: [_m("link", tarfile.SYMTYPE, link="sub"), _m("link/evil", data=b"evil")],
        "link/evil",
    ),
    "write through a symlink listed later": (
        lambda d: [_m("link/evil", data=b"evil"), _m("link", tarfile.SYMTYPE, link="..")],
        "link/evil",
    ),
    "write under a file member": (
        lambda d: [_m("f", data=b"x"), _m("f/g", data=b"y")],
        "f/g",
    ),
    "hard link outside": (lambda d: [_m("hl", tarfile.LNKTYPE, link="../flag")], "hl"),
    "hard link absolute": (
        lambda d: [_m("hl", tarfile.LNKTYPE, link=str(d.parent / "flag"))],
        "hl",
    ),
    "hard link to a later member": (
        lambda d: [_m("hl", tarfile.LNKTYPE, link="later"), _m("later", data=b"x")],
        "hl",
    ),
    "hard link to a symlink": (
        lambda d: [_m("ln", tarfile.SYMTYPE, link="."), _m("hl", tarfile.LNKTYPE, link="ln")],
        "hl",
    ),
    "character device": (lambda d: [_m("null", tarfile.CHRTYPE)], "null"),
    "block device": (lambda d: [_m("sda", tarfile.BLKTYPE)], "sda"),
    "fifo": (lambda d: [_m("pipe", tarfile.FIFOTYPE)], "pipe"),
    "duplicate file": (lambda d: [_m("f", data=b"1"), _m("f", data=b"2")], "'f'"),
    "duplicate after normalising": (
        lambda d: [_m("d/f", data=b"1"), _m("./d//f", data=b"2")],
        "./d//f",
    ),
    "folder then file of the same name": (
        lambda d: [_m("d", tarfile.DIRTYPE), _m("d", data=b"x")],
        "'d'",
    ),
}


@pytest.fixture
def place(tmp_path: Path) -> tuple[Path, Path]:
    """A dest three levels deep in tmp_path (so '..' escapes stay visible) and a canary."""
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    (work / "flag").write_text("original")
    return work / "out", tmp_path


@pytest.mark.parametrize("dest_exists", [False, True], ids=["new-dest", "empty-dest"])
@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_archive_is_refused_and_leaves_nothing(
    case: str, dest_exists: bool, place: tuple[Path, Path]
) -> None:
    dest, root = place
    build, member = HOSTILE[case]
    archive = _tar(root / "hostile.tar", build(dest))
    if dest_exists:
        dest.mkdir()
    before = _listing(root)
    with pytest.raises(InvalidParameterError) as caught:
        safe_extract(archive, dest)
    message = str(caught.value)
    member = member.format(parent=dest.parent)
    assert member in message or repr(member) in message, message
    assert str(archive) in message and "Nothing was extracted" in message
    assert (dest.parent / "flag").read_text() == "original"
    assert _listing(root) == before
    assert (list(dest.iterdir()) == []) if dest_exists else not dest.exists()


def _folder(root: Path) -> Path:
    (root / "data" / "empty").mkdir(parents=True)
    (root / "data" / "nested" / "deeper").mkdir(parents=True)
    (root / "data" / "a.txt").write_text("alpha")
    (root / "data" / "nested" / "deeper" / "big.bin").write_bytes(
        bytes(range(256)) * (3 << 12)
    )  # 3 MB, quick to compress
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "héllo wörld.txt").write_text("unicode")
    (root / "link-to-a").symlink_to(Path("data") / "a.txt")
    (root / "data" / "nested" / "up").symlink_to(Path("..") / ".." / "run.sh")
    (root / "link-to-dir").symlink_to("data")
    return root


def _compress(kind: str, raw: bytes) -> bytes:
    compress: dict[str, Callable[[bytes], bytes]] = {
        "none": bytes,
        "gz": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
    }
    return compress[kind](raw)  # only the one asked for: xz of 3 MB takes seconds


@pytest.mark.parametrize("compression", ["none", "gz", "bz2", "xz"])
def test_write_tar_round_trips_byte_exactly(compression: str, tmp_path: Path) -> None:
    folder = _folder(tmp_path / "model")
    raw = tmp_path / "model.tar"
    write_tar(folder, raw)
    archive = tmp_path / f"model.{compression}"
    archive.write_bytes(_compress(compression, raw.read_bytes()))
    count = safe_extract(archive, tmp_path / "out", max_bytes=4 << 20)
    with tarfile.open(raw) as tar:
        assert count == len(tar.getmembers())
    assert _listing(tmp_path / "out") == _listing(folder)
    assert os.access(tmp_path / "out" / "run.sh", os.X_OK)
    assert (tmp_path / "out" / "data" / "nested" / "up").read_text().startswith("#!/bin/sh")


def test_modes_keep_only_the_executable_bit(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "modes.tar",
        [
            _m("setuid", data=b"x", mode=0o4777),
            _m("sticky-dir", tarfile.DIRTYPE, mode=0o1777),
            _m("shared", data=b"y", mode=0o666),
        ],
    )
    safe_extract(archive, tmp_path / "out")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").iterdir()}
    assert all(mode & 0o7002 == 0 for mode in modes.values()), modes
    assert modes["setuid"] & 0o100 and not modes["shared"] & 0o111


def test_hard_link_becomes_a_copy(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "links.tar",
        [
            _m("./data/a.txt", data=b"alpha", mode=0o755),
            _m("b.txt", tarfile.LNKTYPE, link="data/a.txt"),
            _m("c.txt", tarfile.LNKTYPE, link="b.txt"),
        ],
    )
    assert safe_extract(archive, tmp_path / "out") == 3
    out = tmp_path / "out"
    assert (out / "b.txt").read_bytes() == (out / "c.txt").read_bytes() == b"alpha"
    assert (out / "c.txt").stat().st_ino != (out / "data" / "a.txt").stat().st_ino
    assert os.access(out / "c.txt", os.X_OK)


@pytest.mark.parametrize(
    ("members", "limits", "member"),
    [
        ([_m("bomb.bin", data=b"\0" * (2 << 20))], {"max_bytes": 1 << 20}, "bomb.bin"),
        (
            [_m("f", data=b"\0" * 400_000)]
            + [_m(f"h{i}", tarfile.LNKTYPE, link="f") for i in (1, 2)],
            {"max_bytes": 1 << 20},
            "h2",
        ),
        ([_m(f"f{i}", data=b"x") for i in range(11)], {"max_members": 10}, "f10"),
    ],
    ids=["bomb", "hard-link-amplification", "too-many-members"],
)
def test_limits(members: list[Member], limits: dict[str, int], member: str, tmp_path: Path) -> None:
    raw = _tar(tmp_path / "big.tar", members)
    archive = tmp_path / "big.tar.gz"
    archive.write_bytes(gzip.compress(raw.read_bytes()))
    with pytest.raises(InvalidParameterError, match=f"Member '{member}'.*raise the limit"):
        safe_extract(archive, tmp_path / "out", **limits)
    assert not (tmp_path / "out").exists()


def test_dest_must_be_empty_or_missing(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "ok.tar", [_m("f", data=b"x")])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("mine")
    (tmp_path / "file").write_text("not a folder")
    for dest in (tmp_path / "full", tmp_path / "file"):
        with pytest.raises(InvalidParameterError, match="expected an empty or missing folder"):
            safe_extract(archive, dest)
    assert (tmp_path / "full" / "keep").read_text() == "mine"
    assert safe_extract(archive, tmp_path / "new" / "deeper") == 1


@pytest.mark.parametrize("dest_exists", [False, True], ids=["new-dest", "empty-dest"])
def test_write_failure_removes_everything(dest_exists: bool, tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "long.tar",
        [_m("d/ok.txt", data=b"ok"), _m("ln", tarfile.SYMTYPE, link="d"), _m("n" * 300, data=b"x")],
    )
    dest = tmp_path / "new" / "out"
    if dest_exists:
        dest.mkdir(parents=True)
    with pytest.raises(StorageError, match="File name too long"):
        safe_extract(archive, dest)
    assert (list(dest.iterdir()) == []) if dest_exists else not (tmp_path / "new").exists()


def test_truncated_archive_is_refused(tmp_path: Path) -> None:
    raw = _tar(tmp_path / "ok.tar", [_m("f", data=os.urandom(100_000))]).read_bytes()
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(gzip.compress(raw)[:5000])
    with pytest.raises(InvalidParameterError, match="unreadable tar data"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_writing_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    # The check-then-write gap: a symlink put on disk after validation is refused by O_NOFOLLOW.
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "sub").symlink_to(tmp_path)
    fd = os.open(tmp_path / "dest", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError):
            os.close(_open_dir(fd, ("sub", "evil")))
    finally:
        os.close(fd)
    assert not (tmp_path / "evil").exists()
