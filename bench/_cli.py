"""The command line every benchmark script shares: ``--quick``, ``--only``, one header line.

``bench/core.py`` and ``bench/data.py`` each pass their table of benchmarks to ``main``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
import traceback
from collections.abc import Callable

from _timing import Options


def _header(opts: Options, script: str) -> None:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    import loopml

    print(
        f"# loopml {loopml.__version__} {script}{' --quick' if opts.quick else ''}: "
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


def main(
    script: str,
    description: str,
    benchmarks: dict[str, Callable[[Options], None]],
    argv: list[str] | None = None,
) -> int:
    """Run the chosen ``benchmarks`` (all by default); 1 if one of them crashed."""
    parser = argparse.ArgumentParser(prog=script, description=description)
    parser.add_argument("--quick", action="store_true", help="about 10x smaller sizes (smoke test)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(benchmarks)}"
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(benchmarks)
    unknown = [name for name in chosen if name not in benchmarks]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(benchmarks)}")
    opts = Options(quick=args.quick)
    _header(opts, script)
    failed = []
    started = time.perf_counter()
    for name in chosen:
        began, began_cpu = time.perf_counter(), _cpu_s()
        try:
            benchmarks[name](opts)
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
