"""loopml data benchmarks: adding versions, profiles, validation, drift and push/pull, next to their budgets.

Usage::

    .venv/bin/python bench/data.py            # full sizes (1,000,000-row tables)
    .venv/bin/python bench/data.py --quick    # ~10x smaller, for the smoke test
    .venv/bin/python bench/data.py --only drift

Same output and rules as ``bench/core.py``: one line per figure ending in MET, MISSED,
``n/a (--quick)`` or ``(info)``; nothing asserted; exit status 1 only if a benchmark
itself crashed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import main as run  # noqa: E402
from _datasets import bench_data_add  # noqa: E402
from _drift import bench_drift  # noqa: E402
from _profile import bench_profile  # noqa: E402
from _remote import bench_push_pull  # noqa: E402
from _timing import Options  # noqa: E402
from _validate import bench_validate  # noqa: E402

BENCHMARKS: dict[str, Callable[[Options], None]] = {
    "add": bench_data_add,
    "profile": bench_profile,
    "validate": bench_validate,
    "drift": bench_drift,
    "remote": bench_push_pull,
}


def main(argv: list[str] | None = None) -> int:
    return run("bench/data.py", __doc__.splitlines()[0], BENCHMARKS, argv)


if __name__ == "__main__":
    sys.exit(main())
