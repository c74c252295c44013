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

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _artifacts import bench_artifacts  # noqa: E402
from _cli import main as run  # noqa: E402
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


def main(argv: list[str] | None = None) -> int:
    return run("bench/core.py", __doc__.splitlines()[0], BENCHMARKS, argv)


if __name__ == "__main__":
    sys.exit(main())
