"""ArtifactStore on a local folder only: seals, the verified-stat memo, fsync, disk limits,
temp files and concurrent writers. The behaviour every backend shares is in test_contract.py."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from artifact_helpers import age, flip_byte

from loopml.artifacts import ArtifactStore, _integrity, register_materializer
from loopml.artifacts._staging import process_start
from loopml.errors import (
    IntegrityError,
    InvalidParameterError,
    MaterializerError,
    NotFoundError,
    StorageError,
)

SRC = Path(__file__).resolve().parents[2] / "src"


def test_constructor_does_no_io(tmp_path: Path) -> None:
    root = tmp_path / "nothing-yet"
    store = ArtifactStore(root)
    assert store.uri == str(root)
    assert not root.exists()
    assert list(store.iter_digests()) == []
    assert list(store.iter_temp()) == []
    assert repr(store) == f"ArtifactStore({str(root)!r})"


def test_file_uri_is_a_local_folder(tmp_path: Path) -> None:
    store = ArtifactStore(f"file://{tmp_path}/a")
    stored = store.put_bytes(b"x")
    assert store.blob_path(stored.digest).startswith(str(tmp_path / "a" / "objects"))


def test_local_blobs_are_read_only_files_under_the_root(
    store: ArtifactStore, tmp_path: Path
) -> None:
    stored = store.put_bytes(b"hello loopml")
    digest = stored.digest
    blob = tmp_path / "artifacts" / "objects" / digest[:2] / digest[2:]
    assert store.blob_path(digest) == str(blob)
    assert (stored.type_name, stored.metadata) == ("builtins.bytes", {})
    assert blob.stat().st_mode & 0o222 == 0, "blobs are read-only"


def test_put_file_streams_a_large_file(store: ArtifactStore, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    chunk = os.urandom(1 << 20)
    with open(big, "wb") as f:
        for _ in range(9):
            f.write(chunk)
        f.write(b"tail")
    stored = store.put_file(big)
    assert stored.materializer == "file"
    assert stored.size == 9 * (1 << 20) + 4
    assert stored.digest == hashlib.sha256(big.read_bytes()).hexdigest()
    assert stored.metadata == {"name": "big.bin"}
    loaded = store.get_value(stored.digest, "file", stored.metadata)
    assert loaded.name == "big.bin" and loaded.read_bytes() == big.read_bytes()
    assert loaded.parent != tmp_path, "loading gives a fresh copy, never the user's file"


def test_put_file_errors(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no file or folder exists"):
        store.put_file(tmp_path / "missing.csv")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InvalidParameterError, match="neither a regular file nor a folder"):
        store.put_file(tmp_path / "dangling")


# --- verification on read (the shared cases are in test_contract.py) --------------


def test_corrupt_sklearn_blob_is_never_unpickled(store: ArtifactStore) -> None:
    from sklearn.linear_model import LinearRegression

    stored = store.put_value(LinearRegression())
    flip_byte(store.blob_path(stored.digest), stored.size - 3)
    with pytest.raises(IntegrityError):
        store.get_value(stored.digest, stored.materializer, stored.metadata)


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "/etc/passwd",
        "objects/ab/cd",
        "a" * 63,
        "a" * 65,
        "A" * 64,
        "a" * 63 + "\x00",
        "a" * 64 + "\n",
        "g" * 64,
        "..%2f" * 16,
        "",
        None,
        123,
    ],
)
def test_bad_digests_are_rejected_everywhere(
    store: ArtifactStore, tmp_path: Path, bad: Any
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.get_bytes(bad),
        lambda: store.get_value(bad, "bytes"),
        lambda: store.local_path(bad),
        lambda: store.export(bad, "bytes", tmp_path / "x"),
        lambda: store.exists(bad),
        lambda: store.verify(bad),
        lambda: store.delete(bad),
        lambda: store.blob_path(bad),
        lambda: store.info(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidParameterError, match="Invalid artifact digest"):
            call()
    assert not (tmp_path / "x").exists()


def test_unknown_materializer_name_on_read(store: ArtifactStore) -> None:
    stored = store.put_value({"a": 1})
    with pytest.raises(NotFoundError, match="Did you mean 'json'"):
        store.get_value(stored.digest, "jsn")


def test_verification_is_memoized_and_a_later_flip_is_caught(store: ArtifactStore) -> None:
    stored = store.put_bytes(b"memo me" * 1000)
    blob = store.blob_path(stored.digest)
    age(blob)
    assert store.get_bytes(stored.digest) == b"memo me" * 1000
    st = os.stat(blob)
    assert _integrity.memo_hit(st, stored.digest), "a verified, settled file is memoized"
    assert store.local_path(stored.digest) == Path(blob)
    flip_byte(blob, 10)
    with pytest.raises(IntegrityError, match="is corrupt"):
        store.get_bytes(stored.digest)
    with pytest.raises(IntegrityError, match="is corrupt"):
        store.local_path(stored.digest)


def test_memo_survives_no_mtime_restore(store: ArtifactStore) -> None:
    stored = store.put_bytes(b"x" * 4096)
    blob = store.blob_path(stored.digest)
    age(blob)
    store.verify(stored.digest)
    before = os.stat(blob)
    flip_byte(blob, 100)
    os.utime(blob, ns=(before.st_atime_ns, before.st_mtime_ns))  # hide the edit from mtime
    with pytest.raises(IntegrityError):
        store.get_value(stored.digest, "bytes")


def test_a_blob_rewritten_in_place_loses_its_seal(store: ArtifactStore) -> None:
    """Publishing seals a blob (a fixed mtime); any later write moves the mtime off the seal,
    so neither the memo nor a cache-hit check trusts the changed bytes."""
    stored = store.put_bytes(b"sealed bytes" * 10)
    blob = store.blob_path(stored.digest)
    assert _integrity.is_sealed(os.stat(blob))
    assert store.is_intact(stored.digest, stored.size)
    flip_byte(blob, 3)
    st = os.stat(blob)
    assert not _integrity.is_sealed(st) and not _integrity.memo_hit(st, stored.digest)
    assert not store.is_intact(stored.digest, stored.size)
    with pytest.raises(IntegrityError):
        store.get_bytes(stored.digest)


def test_same_size_damage_is_healed_by_a_new_put(store: ArtifactStore) -> None:
    """Locally a re-put re-hashes an unsealed blob, so a flipped byte is replaced (on S3
    only the size is compared: see test_remote.py)."""
    stored = store.put_bytes(b"heal me" * 100)
    flip_byte(store.blob_path(stored.digest), 5)
    staged = store.stage(b"heal me" * 100)
    try:
        assert store.publish(staged) is True
    finally:
        staged.discard()
    assert store.get_bytes(stored.digest) == b"heal me" * 100
    assert store.is_intact(stored.digest, stored.size)


# --- temp files and their writers ---------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


def test_clean_temp_removes_only_dead_writers_files(store: ArtifactStore, tmp_path: Path) -> None:
    store.put_bytes(b"creates the tmp folder")
    tmp = tmp_path / "artifacts" / "tmp"
    me = os.getpid()
    parent = os.getppid()
    dead = _dead_pid()
    mine = tmp / f"{me}.{process_start(me)}.{'a' * 32}.tmp"
    parents = tmp / f"{parent}.{process_start(parent)}.{'b' * 32}.tmp"
    reused = tmp / f"{parent}.1.{'c' * 32}.tmp"  # a live pid, but another start: pid reuse
    gone = tmp / f"{dead}.{process_start(me)}.{'d' * 32}.tmp"
    foreign = tmp / "notes.txt"
    for path in (mine, parents, reused, gone, foreign):
        path.write_bytes(b"partial")
    assert sorted(store.iter_temp()) == sorted(
        str(p) for p in (mine, parents, reused, gone, foreign)
    )
    assert store.clean_temp() == 2
    assert sorted(store.iter_temp()) == sorted(str(p) for p in (mine, parents, foreign))
    assert store.clean_temp() == 0


def test_temp_names_carry_the_writer_identity(store: ArtifactStore, tmp_path: Path) -> None:
    class Peek:
        name, extension = "test.peek", ""
        seen: list[str] = []

        def save(self, value: Any, path: Path) -> dict[str, Any]:
            self.seen.append(path.name)
            path.write_bytes(b"peek")
            return {}

        def load(self, path: Path, metadata: dict[str, Any]) -> Any:
            return None

    class Marker:
        pass

    peek = Peek()
    register_materializer(Marker, peek)
    store.put_value(Marker())
    pid, start, rest = peek.seen[0].split(".", 2)
    assert int(pid) == os.getpid() and start == process_start(os.getpid())
    assert rest.endswith(".tmp") and len(rest) == 32 + 4
    assert Path(store.blob_path(hashlib.sha256(b"peek").hexdigest())).exists()
    assert list(store.iter_temp()) == []


# --- write failures ----------------------------------------------------------------


class _DiskFull:
    name, extension = "test.diskfull", ""

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        return None


class _Broken:
    name, extension = "test.broken", ""

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        raise RuntimeError("library bug")

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        return None


def test_failed_write_raises_storage_error_and_leaves_nothing(store: ArtifactStore) -> None:
    class Payload:
        pass

    register_materializer(Payload, _DiskFull())
    with pytest.raises(StorageError) as info:
        store.put_value(Payload())
    message = str(info.value)
    assert "disk full (ENOSPC)" in message and "after 4 bytes" in message and "/tmp/" in message
    assert info.value.errno == 28
    assert isinstance(info.value, OSError)
    assert list(store.iter_temp()) == [] and list(store.iter_digests()) == []


def test_materializer_failure_is_wrapped(store: ArtifactStore) -> None:
    class Payload:
        pass

    register_materializer(Payload, _Broken())
    with pytest.raises(
        MaterializerError, match="'test.broken' could not save .*RuntimeError: library bug"
    ):
        store.put_value(Payload())
    assert list(store.iter_temp()) == []


def test_disk_limit_in_a_child_process(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes writes fail with EFBIG, as a full disk would with ENOSPC."""
    script = textwrap.dedent(
        """
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from loopml.artifacts import ArtifactStore
        from loopml.errors import StorageError
        store = ArtifactStore(sys.argv[1])
        small = store.put_bytes(b"s" * 1000)
        print(small.digest)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
        for call in (lambda: store.put_bytes(b"b" * 200_000), lambda: store.put_value("t" * 200_000)):
            try:
                call()
            except StorageError as exc:
                print("StorageError", exc.errno, exc)
        """
    )
    root = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3, proc.stdout
    for line in lines[1:]:
        assert line.startswith("StorageError 27 Could not write the temp file ")
        assert "file too large" in line and "bytes" in line
    store = ArtifactStore(root)
    assert list(store.iter_digests()) == [lines[0]], "no partial blob under any digest"
    assert list(store.iter_temp()) == []
    assert store.get_bytes(lines[0]) == b"s" * 1000


def test_import_is_cheap() -> None:
    code = (
        "import sys, loopml, loopml.artifacts; "
        "heavy = {'pandas', 'numpy', 'pyarrow', 'polars', 'sklearn', 'psutil', "
        "'fsspec', 's3fs', 'botocore', 'aiobotocore', 'aiohttp'}; "
        "print(sorted(heavy & {name.partition('.')[0] for name in sys.modules}))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert proc.stdout.strip() == "[]"


def test_concurrent_writers_of_the_same_content(tmp_path: Path) -> None:
    """4 processes × 3 threads store overlapping content at once: one blob per digest."""
    script = textwrap.dedent(
        """
        import sys
        from concurrent.futures import ThreadPoolExecutor
        from loopml.artifacts import ArtifactStore
        store = ArtifactStore(sys.argv[1])
        def work(i):
            return [store.put_bytes(bytes([n % 7]) * 300_000).digest for n in range(i, i + 14)]
        with ThreadPoolExecutor(3) as pool:
            for digests in pool.map(work, range(3)):
                print(*digests)
        """
    )
    root = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    seen: set[str] = set()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        seen.update(out.split())
    store = ArtifactStore(root)
    assert sorted(store.iter_digests()) == sorted(seen) and len(seen) == 7
    for digest in seen:
        store.verify(digest)
    assert list(store.iter_temp()) == []
