"""``data add`` of a big file against raw SHA-256 + copy of the same file, in one process.

A version is the file's bytes stored once by content: adding reads the file, hashes it and
writes it into the store (fsync'ed). The baseline does exactly one read, hash and write of
the same file. Adding the same file again is timed too (its stat matches the hash cache:
the version is found without reading the file), and so is the whole ``loopml data add``
process a user waits for.
"""

from __future__ import annotations

import os
from pathlib import Path

from _artifacts import _raw_copy_file
from _timing import (
    PYTHON,
    Options,
    clean_env,
    fmt_s,
    judged,
    median,
    report,
    run_process,
    temp_project,
    time_call,
)

ADD_BUDGET = 0.70  # of raw SHA-256 + copy


def _big_file(path: Path, size: int) -> None:
    chunk = os.urandom(2**20)
    with open(path, "wb") as f:
        for i in range(size // 2**20):
            f.write(i.to_bytes(8, "little") + chunk[8:])  # distinct blocks, cheap to make


def _new_first_block(path: Path, seed: int) -> None:
    with open(path, "r+b") as f:
        f.write(seed.to_bytes(8, "little"))


def bench_data_add(opts: Options) -> None:
    import loopml

    size = opts.pick(1024, 64) * 2**20
    repeats = opts.pick(3, 1)
    with temp_project("data-add") as root:
        src = root / "big.bin"
        _big_file(src, size)
        (root / "warm.bin").write_bytes(b"warm")
        loopml.add_dataset(root / "warm.bin", name="warm")  # creates the store, warms imports
        raw_times, add_times = [], []
        for i in range(repeats):
            _new_first_block(src, i)  # new content: every add writes a new blob
            dest = root / "raw.bin"
            raw_times.append(time_call(lambda dest=dest: _raw_copy_file(src, dest)))
            dest.unlink()
            add_times.append(time_call(lambda i=i: loopml.add_dataset(src, name=f"big{i}")))
        ours, raw = median(add_times), median(raw_times)
        mb = size / 1e6
        report(
            opts,
            f"data add, a {size // 2**20:,} MiB file",
            f"{mb / ours:,.0f} MB/s ({fmt_s(ours)}) vs raw SHA-256 + copy + fsync {mb / raw:,.0f} MB/s "
            f"({fmt_s(raw)}) = {raw / ours:.0%} of raw (median of {repeats})",
            f"≥ {ADD_BUDGET:.0%} of raw",
            judged(opts, raw / ours >= ADD_BUDGET),
        )
        loopml.add_dataset(src, name="again")
        again = median(
            [time_call(lambda: loopml.add_dataset(src, name="again")) for _ in range(repeats)]
        )
        report(
            opts,
            f"data add, the same {size // 2**20:,} MiB file again (no new version)",
            f"{fmt_s(again)} (unchanged since it was hashed: answered from the stat cache, the "
            f"file is not read; median of {repeats})",
        )
        loopml_cmd = str(Path(PYTHON).parent / "loopml")
        whole = []
        for i in range(repeats):
            _new_first_block(src, 1000 + i)  # a real copy each time
            command = [loopml_cmd, "data", "add", str(src), "--name", f"cli{i}"]
            whole.append(run_process(command, cwd=root, env=clean_env()))
        report(
            opts,
            f"`loopml data add` of a {size // 2**20:,} MiB file, whole process",
            f"{fmt_s(median(whole))} (start-up, hash, copy, fsync, record; raw SHA-256 + copy "
            f"{fmt_s(raw)}; median of {repeats})",
        )
