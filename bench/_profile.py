"""Profile figures: ``profile()`` of a 1,000,000 × 20 table, in memory and from Parquet.

The table mixes what real tables hold: 8 float columns with 5 % NaN, 6 integer columns,
5 string category columns (50 labels, 2 % null) and a boolean. The Parquet file is
written once (snappy, default row groups); reading it is part of the timed call, since
``profile("data.parquet")`` is what ``loopml data add`` will do.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from _timing import Options, fmt_s, judged, median, repeat, report

BUDGET_S = 1.0


def make_table(rows: int, seed: int = 0) -> Any:
    """A rows × 20 Arrow table of floats (with NaN), ints, string categories and a bool."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(8):
        x = rng.normal(i, 1 + i, rows)
        x[rng.random(rows) < 0.05] = np.nan
        columns[f"float_{i}"] = pa.array(x)
    for i in range(6):
        columns[f"int_{i}"] = pa.array(rng.integers(-1_000, 1_000_000, rows))
    labels = np.array([f"category_{k}" for k in range(50)], dtype=object)
    for i in range(5):
        values = labels[rng.integers(0, 50, rows)]
        values[rng.random(rows) < 0.02] = None
        columns[f"cat_{i}"] = pa.array(values, pa.string())
    columns["flag"] = pa.array(rng.random(rows) < 0.3)
    return pa.table(columns)


def bench_profile(opts: Options) -> None:
    import pyarrow.parquet as pq

    from loopml.data.profile import profile

    rows = opts.pick(1_000_000, 100_000)
    runs = opts.pick(5, 3)
    table = make_table(rows)
    size = f"{rows:,} × {table.num_columns}"
    times = repeat(lambda: profile(table), runs, warmup=1)
    best = median(times)
    report(
        opts,
        f"profile of a {size} Arrow table (median of {runs})",
        fmt_s(best),
        f"< {BUDGET_S:g} s",
        judged(opts, best < BUDGET_S),
    )
    folder = Path(tempfile.mkdtemp(prefix="loopml-bench-profile-"))
    try:
        path = folder / "table.parquet"
        pq.write_table(table, path)
        times = repeat(lambda: profile(path), runs, warmup=1)
        best = median(times)
        report(
            opts,
            f"profile of a {size} Parquet file, read included (median of {runs})",
            fmt_s(best),
            f"< {BUDGET_S:g} s",
            judged(opts, best < BUDGET_S),
        )
        json_bytes = len(profile(path).to_json().encode())
        report(opts, f"profile JSON stored with a {size} version", f"{json_bytes:,} bytes")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
