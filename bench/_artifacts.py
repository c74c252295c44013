"""Artifact store throughput against the raw floor measured in the same run.

The floor is what any content-addressed store must at least do: SHA-256 the bytes and
write them durably (write + fsync) — or, to read, read them and SHA-256 them. loopml's
store does the same work plus its temp-file/link/rename dance, so the figure is the
ratio of the two, measured alternately on the same machine at the same moment.

Each loopml put goes to a fresh store folder (a store holding the digest already would
skip the write). Before each verified read the blob's mtime is touched, so the store's per-process
"already verified" memo cannot vouch for it and every read really re-hashes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _timing import Options, judged, median, report, time_call

RATIO_BUDGET = 0.70
_CHUNK = 1 << 20


def _raw_put_bytes(data: bytes, dest: Path) -> None:
    hashlib.sha256(data).hexdigest()
    with open(dest, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _raw_copy_file(src: Path, dest: Path) -> None:
    """One pass: read 1 MiB chunks, hash them, write them; then fsync."""
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(src, "rb", buffering=0) as fin, open(dest, "wb") as fout:
        while n := fin.readinto(buf):
            h.update(view[:n])
            fout.write(view[:n])
        fout.flush()
        os.fsync(fout.fileno())


def _raw_get(src: Path) -> None:
    with open(src, "rb", buffering=0) as f:
        hashlib.sha256(f.read()).hexdigest()


def _touch(path: Path) -> None:
    """Give the blob a new mtime, so the store's verified-file memo cannot vouch for it."""
    os.utime(path)


def _pair(
    repeats: int, raw: Callable[[int], float], ours: Callable[[int], float]
) -> tuple[list[float], list[float]]:
    raw_times, our_times = [], []
    raw(-1)
    ours(-1)
    for i in range(repeats):
        raw_times.append(raw(i))
        our_times.append(ours(i))
    return raw_times, our_times


def _line(
    opts: Options, name: str, size: int, raw_times: list[float], our_times: list[float], what: str
) -> None:
    mb = size / 1e6
    ours, raw = median(our_times), median(raw_times)
    ratio = raw / ours
    report(
        opts,
        name,
        f"{mb / ours:,.0f} MB/s (best {mb / min(our_times):,.0f}) vs raw {what} {mb / raw:,.0f} MB/s "
        f"= {ratio:.0%} of raw ({size / 2**20:.0f} MiB, median of {len(our_times)})",
        f"≥ {RATIO_BUDGET:.0%} of raw",
        judged(opts, ratio >= RATIO_BUDGET),
    )


def bench_artifacts(opts: Options) -> None:
    from loopml.artifacts import ArtifactStore

    size = opts.pick(256, 32) * 2**20
    repeats = opts.pick(3, 1)
    work = Path(tempfile.mkdtemp(prefix="loopml-bench-artifacts-"))
    try:
        data = os.urandom(size)
        stores: list[Any] = []

        def fresh_store() -> Any:
            folder = work / f"store{len(stores)}"
            if stores:
                shutil.rmtree(work / f"store{len(stores) - 1}", ignore_errors=True)
            stores.append(folder)
            return ArtifactStore(folder)

        def raw_bytes(i: int) -> float:
            dest = work / "raw.bin"
            dest.unlink(missing_ok=True)
            return time_call(lambda: _raw_put_bytes(data, dest))

        def put_value(i: int) -> float:
            store = fresh_store()
            return time_call(lambda: store.put_value(data))

        def put_bytes(i: int) -> float:
            store = fresh_store()
            return time_call(lambda: store.put_bytes(data))

        raw_t, ours_t = _pair(repeats, raw_bytes, put_value)
        _line(
            opts,
            "artifact put, bytes object (put_value, as log_artifact does)",
            size,
            raw_t,
            ours_t,
            "SHA-256 + write + fsync",
        )
        raw_t, ours_t = _pair(repeats, raw_bytes, put_bytes)
        _line(
            opts,
            "artifact put, bytes object (put_bytes)",
            size,
            raw_t,
            ours_t,
            "SHA-256 + write + fsync",
        )

        src = work / "source.bin"
        src.write_bytes(data)
        reader = ArtifactStore(work / "reader")
        stored = reader.put_value(data)
        blob = reader.local_path(stored.digest)
        data = b""  # release the 256 MiB; the closures above are done with it

        def raw_copy(i: int) -> float:
            dest = work / "raw-copy.bin"
            dest.unlink(missing_ok=True)
            return time_call(lambda: _raw_copy_file(src, dest))

        def put_file(i: int) -> float:
            store = fresh_store()
            return time_call(lambda: store.put_file(src))

        raw_t, ours_t = _pair(repeats, raw_copy, put_file)
        _line(opts, "artifact put, file (put_file)", size, raw_t, ours_t, "SHA-256 + copy + fsync")

        def raw_read(i: int) -> float:
            return time_call(lambda: _raw_get(src))

        def get_value(i: int) -> float:
            _touch(blob)
            return time_call(
                lambda: reader.get_value(stored.digest, stored.materializer, stored.metadata)
            )

        def get_bytes(i: int) -> float:
            _touch(blob)
            return time_call(lambda: reader.get_bytes(stored.digest))

        raw_t, ours_t = _pair(repeats, raw_read, get_bytes)
        _line(opts, "artifact get, verified (get_bytes)", size, raw_t, ours_t, "read + SHA-256")
        raw_t, ours_t = _pair(repeats, raw_read, get_value)
        _line(
            opts,
            "artifact get, verified (get_value of a bytes artifact, as loopml.load does)",
            size,
            raw_t,
            ours_t,
            "read + SHA-256",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
