"""Batch scoring figures: ``score_file`` of a Parquet file against the bare model, and its memory.

The file has the churn model's mixed columns (integer, float, text), written a million rows
at a time. Speed: ``score_file`` (read, check, predict, write, chunk by chunk) against
``model.predict`` of the whole frame already in memory, both in this process, interleaved,
medians of 3; so the comparison charges ``score_file`` for its reading and writing. Memory:
each size is scored in a fresh process that reports its own peak RSS, so the figures do not
carry what an earlier, bigger run left behind. Until ``loopml.serving.batch`` exists the
section prints "not available yet".
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from _serve_apps import churn_frame, guarded, missing, project
from _timing import PYTHON, Options, clean_env, judged, median, report

SCORE_GOAL = 0.80  # of the bare model's rows/s
FLAT_GOAL = 1.25  # peak RSS at the largest file ≤ 1.25 × at the smallest
RUNS = 3


def _write_parquet(path: Path, rows: int, chunk: int = 1_000_000) -> None:
    """A churn-shaped Parquet file of ``rows`` rows, written a chunk at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for i, start in enumerate(range(0, rows, chunk)):
        table = pa.Table.from_pandas(
            churn_frame(min(chunk, rows - start), seed=i), preserve_index=False
        )
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


_SCORE_CHILD = """
import json, sys
from loopml.serving.batch import score_file
r = score_file(sys.argv[1], sys.argv[2], sys.argv[3], runtime="native")
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child forked from a big
# parent would report the parent's peak.
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"rows": r.scored, "rows_per_s": r.rows_per_second, "peak_kib": peak}))
"""


def bench_scoring(opts: Options) -> None:
    why = missing("loopml.serving.batch")
    if why:
        report(opts, "batch scoring (score_file)", why)
        return
    rows = opts.pick(10_000_000, 100_000)
    sizes = opts.pick((100_000, 1_000_000, 10_000_000), (10_000, 100_000))
    with project() as (root, _):
        files = {n: root / f"rows-{n}.parquet" for n in sorted({*sizes, rows})}
        for n, path in files.items():
            _write_parquet(path, n)
        guarded(opts, "batch scoring", _score_speed, opts, root, files[rows], rows)
        guarded(opts, "batch scoring peak RSS", _score_memory, opts, root, files, sizes)


def _score_speed(opts: Options, root: Path, path: Path, rows: int) -> None:
    import pyarrow.parquet as pq

    from loopml.serving.batch import score_file
    from loopml.tracking.client import Client

    client = Client()
    model = client.load_artifact(client.model_version("churn").digest)
    frame = pq.read_table(path).to_pandas()
    score_file("churn", path, root / "warm.parquet", runtime="native")  # imports, caches
    scored, bare_s = [], []
    for _ in range(RUNS):  # interleaved, so a busy moment hits both alike
        scored.append(score_file("churn", path, root / "scored.parquet", runtime="native"))
        started = time.perf_counter()
        model.predict(frame)
        bare_s.append(time.perf_counter() - started)
    result = sorted(scored, key=lambda r: r.seconds)[len(scored) // 2]
    bare = rows / median(bare_s)
    ratio = result.rows_per_second / bare
    report(
        opts,
        f"batch scoring of a {rows:,}-row Parquet file, score_file (native)",
        f"{result.rows_per_second:,.0f} rows/s ({result.seconds:.2f} s: read, check, predict, write); "
        f"bare model.predict on the frame in memory {bare:,.0f} rows/s; {ratio:.0%} of it "
        f"(medians of {RUNS})",
        f"≥ {SCORE_GOAL:.0%} at 10,000,000 rows",
        judged(opts, ratio >= SCORE_GOAL),
    )
    if missing("loopml.serving.onnx"):
        report(opts, "batch scoring, score_file (onnx)", missing("loopml.serving.onnx"))
        return
    onnx = score_file("churn", path, root / "scored-onnx.parquet", runtime="onnx")
    report(
        opts,
        f"batch scoring of a {rows:,}-row Parquet file, score_file (onnx)",
        f"{onnx.rows_per_second:,.0f} rows/s; {onnx.rows_per_second / bare:.0%} of bare model.predict",
    )


def _score_memory(
    opts: Options, root: Path, files: dict[int, Path], sizes: tuple[int, ...]
) -> None:
    peaks = {}
    for n in sizes:
        done = subprocess.run(
            [PYTHON, "-c", _SCORE_CHILD, "churn", str(files[n]), str(root / f"out-{n}.parquet")],
            cwd=root,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"score_file of {n:,} rows exited {done.returncode}:\n{done.stderr[-2000:]}"
            )
        got = json.loads(done.stdout.strip().splitlines()[-1])
        peaks[n] = got["peak_kib"] / 1024
        report(
            opts,
            f"batch scoring peak RSS, {n:,} rows (fresh process)",
            f"{peaks[n]:,.0f} MiB ({got['rows_per_s']:,.0f} rows/s)",
        )
    growth = peaks[max(sizes)] / peaks[min(sizes)]
    report(
        opts,
        f"batch scoring peak RSS, {max(sizes):,} vs {min(sizes):,} rows",
        f"{growth:.2f}x",
        f"≤ {FLAT_GOAL:g}x (flat) from 10^5 to 10^7 rows",
        judged(opts, growth <= FLAT_GOAL),
    )
