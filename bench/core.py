"""loopml core benchmarks: print each figure next to its DESIGN.md §6 budget.

Usage::

    .venv/bin/python bench/core.py            # full sizes (a few minutes)
    .venv/bin/python bench/core.py --quick    # ~10x smaller, for the smoke test
    .venv/bin/python bench/core.py --only startup,metrics

Every figure is one line ending in MET, MISSED, ``n/a (--quick)`` (a size-dependent
budget cannot be judged at quick sizes) or ``(info)``. Nothing is asserted: a missed
budget is a finding, not a failure. The exit status is 1 only if a benchmark itself
crashed. Everything runs in throw-away project folders under the temp directory;
figures are medians of repeated runs on whatever machine this is, so read them next to
the load average printed first.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _artifacts import bench_artifacts  # noqa: E402
from _pipelines import bench_big_frame, bench_fanout, bench_step_overhead  # noqa: E402
from _startup import bench_startup  # noqa: E402
from _store import bench_gc, bench_run_get  # noqa: E402
from _timing import Options  # noqa: E402
from _tracking import (  # noqa: E402
    bench_metric_logging,
    bench_run_creation,
    bench_runs_query,
    bench_search_many,
)

BENCHMARKS: dict[str, Callable[[Options], None]] = {
    "startup": lambda opts: bench_startup(opts, Path(tempfile.gettempdir())),
    "steps": bench_step_overhead,
    "metrics": bench_metric_logging,
    "query": bench_runs_query,
    "create": bench_run_creation,
    "search": bench_search_many,
    "get": bench_run_get,
    "gc": bench_gc,
    "artifacts": bench_artifacts,
    "dataframe": bench_big_frame,
    "fanout": bench_fanout,
}


def _header(opts: Options) -> None:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    import loopml

    print(
        f"# loopml {loopml.__version__} bench/core.py{' --quick' if opts.quick else ''}: "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )


def _cpu_s() -> float:
    """CPU seconds of this process and its reaped children (less skewed by load than wall time)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 10x smaller sizes (smoke test)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}"
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    opts = Options(quick=args.quick)
    _header(opts)
    failed = []
    started = time.perf_counter()
    for name in chosen:
        began, began_cpu = time.perf_counter(), _cpu_s()
        try:
            BENCHMARKS[name](opts)
        except Exception:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            print(f"{name}: ERROR\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        print(
            f"# {name} took {time.perf_counter() - began:.1f} s "
            f"(CPU {_cpu_s() - began_cpu:.1f} s, with child processes)",
            flush=True,
        )
    print(
        f"# {len(opts.lines)} figures in {time.perf_counter() - started:.0f} s"
        + (f"; benchmarks that crashed: {', '.join(failed)}" if failed else ""),
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
