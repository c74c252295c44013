"""Validation: 1M rows x 20 columns checked against a schema inferred from a reference.

The new batch has a few violations of each kind (out-of-range values, missing values, an
unseen category, a duplicated key), so the figure includes building the masks, counts and
example rows, not only the fast path where every summary is clean.
"""

from __future__ import annotations

from typing import Any

from _timing import Options, fmt_s, judged, median, repeat, report


def _frame(rows: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {"id": np.arange(rows, dtype=np.int64)}
    for i in range(7):
        data[f"int_{i}"] = rng.integers(0, 1000, rows)
    for i in range(8):
        data[f"float_{i}"] = rng.normal(0, 1, rows)
    cities = np.array([f"city_{i}" for i in range(20)], dtype=object)
    for i in range(4):
        data[f"cat_{i}"] = pd.array(cities[rng.integers(0, 20, rows)], dtype="str")
    return pd.DataFrame(data)


def _with_violations(frame: Any) -> Any:
    bad = frame.copy()
    bad.loc[[10, 5000, 700_000 % len(bad)], "int_0"] = 5000  # out of range
    bad.loc[[3, 99], "float_1"] = float("nan")  # missing where none were seen
    bad.loc[[7], "cat_2"] = "Atlantis"  # unseen category
    bad.loc[[42], "id"] = 41  # duplicated key
    return bad


def bench_validate(opts: Options) -> None:
    import pyarrow as pa

    from loopml.data.validate import infer_schema, validate

    rows = opts.pick(1_000_000, 100_000)
    schema = infer_schema(_frame(rows, seed=1), key="id")
    batch = _with_violations(_frame(rows, seed=2))
    table = pa.Table.from_pandas(batch, preserve_index=False)
    checked = validate(batch, schema, raise_on_error=False)
    assert len(checked.errors) == 4, checked

    times = repeat(lambda: validate(batch, schema, raise_on_error=False), opts.pick(5, 3), warmup=1)
    seconds = median(times)
    report(
        opts,
        f"validate {rows:,} rows x 20 columns (pandas DataFrame, 4 violations)",
        fmt_s(seconds),
        "< 1 s",
        judged(opts, seconds < 1.0),
    )
    arrow_s = median(repeat(lambda: validate(table, schema, raise_on_error=False), opts.pick(5, 3)))
    report(opts, f"validate {rows:,} rows x 20 columns (pyarrow Table)", fmt_s(arrow_s))
