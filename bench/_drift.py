"""Drift report speed: two 1,000,000 x 20 tables, every statistic of every column.

The tables are pandas DataFrames (the common input), 10 float columns and 10 string
columns of 5 to 50 categories. Numeric columns of the current table are unchanged, shifted
by 0.01 (KS significant, distance small: the slowest p-value path) or by 0.2; half the
categorical ones gain a new category. Building the frames is not timed; converting them
to Arrow is, since drift() does it.
"""

from __future__ import annotations

import time
from typing import Any

from _timing import Options, fmt_s, judged, median, repeat, report

BUDGET_S = 3.0


def _tables(rows: int) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    ref: dict[str, Any] = {}
    cur: dict[str, Any] = {}
    for i in range(10):
        ref[f"num{i}"] = rng.normal(0.0, 1.0, rows)
        cur[f"num{i}"] = rng.normal((0.0, 0.01, 0.2)[i % 3], 1.0, rows)
    for i in range(10):
        cats = np.array([f"cat{k}" for k in range(5 + 5 * i)], dtype=object)
        ref[f"cat{i}"] = cats[rng.integers(0, len(cats), rows)]
        shift = len(cats) + (i % 2)  # odd columns gain a new category
        cur[f"cat{i}"] = np.append(cats, "new")[rng.integers(0, shift, rows)]
    return pd.DataFrame(ref), pd.DataFrame(cur)


def bench_drift(opts: Options) -> None:
    from loopml.data.drift import drift

    rows = opts.pick(1_000_000, 100_000)
    ref, cur = _tables(rows)
    cpu: list[float] = []

    def once() -> None:
        started = time.process_time()
        drift(ref, cur)
        cpu.append(time.process_time() - started)

    times = repeat(once, opts.pick(5, 3), warmup=1)
    took = median(times)
    report(
        opts,
        f"drift report, {rows:,} x 20 (10 numeric, 10 categorical), pandas in",
        fmt_s(took),
        f"< {BUDGET_S:g} s",
        judged(opts, took < BUDGET_S),
    )
    # CPU seconds over both cores: steadier than wall time on a shared machine.
    report(opts, "drift report, CPU time (all threads)", fmt_s(median(cpu[1:])))
