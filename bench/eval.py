"""loopml evaluation benchmarks: bootstrap confidence intervals of the binary metrics, vs a naive loop.

Usage::

    .venv/bin/python bench/eval.py                       # 1,000,000 rows x 1,000 resamples
    .venv/bin/python bench/eval.py --quick               # 100,000 rows x 100 resamples
    .venv/bin/python bench/eval.py --rows 200000 --resamples 500 --only bootstrap

Goal (issue): all default binary metrics with 95 % bootstrap intervals over 1,000,000 rows
x 1,000 resamples in under 10 s. The naive figure times a few resamples of scikit-learn's
metric functions on the same data and extrapolates to the full count (said in its line).
Same output rules as ``bench/core.py``; nothing asserted.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import main as run  # noqa: E402
from _timing import (  # noqa: E402
    PYTHON,
    Options,
    clean_env,
    fmt_s,
    judged,
    median,
    report,
    run_process,
    temp_project,
)

BUDGET_S = 10.0
NAIVE_RESAMPLES = 5
SIZES: dict[str, int] = {}


def _sizes(opts: Options) -> tuple[int, int]:
    rows = SIZES.get("rows") or opts.pick(1_000_000, 100_000)
    return rows, SIZES.get("resamples") or opts.pick(1000, 100)


def _data(rows: int, noise: float = 1.0, seed: int = 0) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.3).astype(np.int64)
    s = 1 / (1 + np.exp(-(2.0 * y - 1 + rng.normal(0, noise, rows))))
    return y, s


def _full_size(opts: Options) -> bool | None:
    return None if opts.quick or _sizes(opts) != (1_000_000, 1000) else True


def bench_bootstrap(opts: Options) -> None:
    from sklearn import metrics as skm

    from loopml.evaluation.bootstrap import bootstrap, resample_counts
    from loopml.evaluation.metrics import Predictions, compute, default_metrics

    rows, resamples = _sizes(opts)
    y, s = _data(rows)
    metrics = default_metrics("binary")
    started, cpu = time.perf_counter(), time.process_time()
    compute(metrics, y, Predictions(scores=s))
    bootstrap(metrics, y, Predictions(scores=s), resamples=resamples)
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    met = judged(opts, took < BUDGET_S) if _full_size(opts) else None
    report(
        opts,
        "bootstrap of the 6 binary metrics (compute + bootstrap)",
        f"{fmt_s(took)} for {rows:,} rows x {resamples:,} resamples",
        f"< {BUDGET_S:g} s at 1,000,000 x 1,000",
        met,
    )
    # CPU seconds over both threads: steadier than wall time on a shared machine.
    report(opts, "bootstrap CPU time (all threads)", fmt_s(cpu))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report(opts, "bootstrap peak RSS (whole process)", f"{rss:,.0f} MiB")

    import numpy as np

    counts = resample_counts(rows, resamples=NAIVE_RESAMPLES)
    started = time.perf_counter()
    for b in range(NAIVE_RESAMPLES):
        i = np.repeat(np.arange(rows), counts[b])
        yi, si = y[i], s[i]
        skm.roc_auc_score(yi, si), skm.average_precision_score(yi, si)
        skm.log_loss(yi, y_proba=si), skm.brier_score_loss(yi, si)
        skm.f1_score(yi, si >= 0.5), skm.accuracy_score(yi, si >= 0.5)
    naive = (time.perf_counter() - started) / NAIVE_RESAMPLES * resamples
    report(
        opts,
        "naive loop over scikit-learn's metric functions, same data",
        f"{fmt_s(naive)} (timed {NAIVE_RESAMPLES} resamples, extrapolated to {resamples:,}); "
        f"loopml is {naive / took:.1f}x faster",
    )


def bench_paired(opts: Options) -> None:
    from loopml.evaluation.bootstrap import paired_bootstrap
    from loopml.evaluation.metrics import Predictions, default_metrics

    rows, resamples = _sizes(opts)
    y, s = _data(rows)
    _, worse = _data(rows, noise=1.5, seed=1)
    started = time.perf_counter()
    paired_bootstrap(
        default_metrics("binary"), y, Predictions(scores=s), Predictions(scores=worse),
        resamples=resamples,
    )  # fmt: skip
    took = time.perf_counter() - started
    report(
        opts,
        "paired bootstrap of two models, 6 binary metrics",
        f"{fmt_s(took)} for {rows:,} rows x {resamples:,} resamples",
    )


def bench_cli(opts: Options) -> None:
    """What a user waits for: `loopml eval` of a stored model on a suite with ``rows`` test
    rows, the whole process (start-up, load data and model, predict, bootstrap, store, print);
    then the same command again, answered from the stored result."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from loopml.evaluation.suites import create_suite
    from loopml.tracking.client import Client

    rows, resamples = _sizes(opts)
    total = int(rows / 0.8)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(total, 3))
    y = (x @ [1.0, -0.5, 0.25] + rng.normal(size=total) > 0).astype(int)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})
    with temp_project("eval") as root:
        suite, _ = create_suite(
            "big", data=frame, target="y", task="binary", split="stratified:test=0.8,seed=0"
        )
        X, y_train = suite.train()
        digest = Client().store_value(LogisticRegression().fit(X, y_train)).digest
        command = [
            str(Path(PYTHON).parent / "loopml"), "eval", "big", "--model", digest,
            "--resamples", str(resamples),
        ]  # fmt: skip
        # Warm-up (other settings, so the timed run below computes): compiles the libraries'
        # bytecode into the bench's fresh cache, which a user's machine has done long ago.
        run_process([*command[:-1], "1"], cwd=root, env=clean_env())
        first = run_process(command, cwd=root, env=clean_env())
        again = [run_process(command, cwd=root, env=clean_env()) for _ in range(opts.pick(5, 2))]
    report(
        opts,
        "`loopml eval` of a stored model, whole process",
        f"{fmt_s(first)} for {rows:,} test rows x {resamples:,} resamples (start-up, load, "
        "predict, bootstrap, store, print)",
    )
    report(opts, "`loopml eval` again, stored result, whole process", fmt_s(median(again)))


BENCHMARKS: dict[str, Callable[[Options], None]] = {
    "bootstrap": bench_bootstrap,
    "paired": bench_paired,
    "cli": bench_cli,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--rows", type=int, default=0, help="test rows (default 1,000,000)")
    parser.add_argument("--resamples", type=int, default=0, help="bootstrap resamples (1,000)")
    known, rest = parser.parse_known_args(argv)
    SIZES.update(rows=known.rows, resamples=known.resamples)
    return run("bench/eval.py", __doc__.splitlines()[0], BENCHMARKS, rest)


if __name__ == "__main__":
    sys.exit(main())
