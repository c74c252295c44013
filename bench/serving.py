"""loopml serving benchmarks: `loopml serve` over HTTP, batch scoring and ONNX, next to their goals.

Usage::

    .venv/bin/python bench/serving.py                    # 10 s per measurement, 10^7-row file
    .venv/bin/python bench/serving.py --quick            # 2 s per measurement, 10^5-row file
    .venv/bin/python bench/serving.py --only online,logging --seconds 5 --loadgen python

Sections (``--only``): ``online`` single-row requests, ``batches`` 1,000-row requests,
``scoring`` batch scoring of a Parquet file, ``onnx`` ONNX Runtime vs the native model in
process, ``logging`` prediction logging on vs off.

Goals (issue 16, DESIGN.md §6): one row over HTTP ≥ 3,000 req/s on one worker, p50 < 1 ms,
≥ 70 % of a minimal ASGI app calling the bare model; 1,000-row batches ≥ 250,000 rows/s;
batch scoring ≥ 80 % of the bare model's rows/s with flat peak memory from 10^5 to 10^7
rows; prediction logging costs < 10 % of throughput. ``loopml serve`` runs as the real
command in its own process pinned to one CPU, the minimal app (``bench/_serve_apps.py``)
the same way, and both are loaded by the same generator (``bench/_loadgen.py``: wrk when
installed, else a lean multi-process client) on the other CPUs. Throughput is measured at
8 connections (1,000-row requests at 4); the p50 goal is judged on the unloaded latency (1 connection). Sections for
modules still being written (``loopml.serving.batch``, ``loopml.serving.onnx``) print "not
available yet". Same output rules as ``bench/core.py``: one line per figure ending in MET,
MISSED, ``n/a (--quick)`` or ``(info)``; nothing asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import main as run  # noqa: E402
from _loadgen import WARMUP_S, Load, engine, measure  # noqa: E402
from _scoring import bench_scoring  # noqa: E402
from _serve_apps import (  # noqa: E402
    MODELS,
    cpu_split,
    guarded,
    loopml_serve_command,
    metric_value,
    minimal_command,
    missing,
    project,
    records_body,
    serving,
)
from _timing import Options, judged, median, percentile, report  # noqa: E402

RPS_GOAL = 3_000
P50_GOAL_S = 0.001
OF_MINIMAL_GOAL = 0.70
ROWS_GOAL = 250_000
LOG_COST_GOAL = 0.10
QUICK_WARMUP_S = 0.3  # --quick: figures to check the script, not to judge the goals
RUNS = 3  # logging on/off rounds
CONNECTIONS = 8
BATCH_ROWS = 1_000
BATCH_CONNECTIONS = 4
SETTINGS: dict[str, Any] = {"seconds": 0.0, "loadgen": "auto", "models": MODELS}


def _seconds(opts: Options) -> float:
    return float(SETTINGS["seconds"] or opts.pick(10.0, 2.0))


def _warmup(opts: Options) -> float:
    return float(opts.pick(WARMUP_S, QUICK_WARMUP_S))


def _pair(
    opts: Options, root: Path, name: str, runtime: str, body: bytes, *, connections: list[int]
) -> list[tuple[Load, Load]]:
    """(loopml serve, minimal app) loads of ``body`` at each connection count, same run."""
    server_cpus, client_cpus = cpu_split()
    tool = engine(SETTINGS["loadgen"])
    # `loopml serve` as a user starts it: its defaults, so every prediction is logged.
    ours_cmd = loopml_serve_command(name, runtime=runtime, log_sample=1.0)
    with (
        serving(ours_cmd, cwd=root, cpus=server_cpus) as ours,
        serving(minimal_command(name, runtime=runtime), cwd=root, cpus=server_cpus) as base,
    ):
        out = []
        for n in connections:
            loads = [
                measure(
                    server.url,
                    body,
                    seconds=_seconds(opts),
                    connections=n,
                    tool=tool,
                    cpus=client_cpus,
                    server_pid=server.pid,
                    warmup=_warmup(opts),
                )
                for server in (ours, base)
            ]
            out.append((loads[0], loads[1]))
        return out


def bench_online(opts: Options) -> None:
    with project() as (root, frames):
        for name in SETTINGS["models"]:
            body = records_body(frames[name], 1)
            for runtime in ("native", "onnx"):
                label = f"online 1 row, {name} ({runtime})"
                why = missing("loopml.serving.onnx") if runtime == "onnx" else None
                if why:
                    report(opts, label, why)
                    continue
                guarded(opts, label, _online, opts, root, name, runtime, body, label)


def _online(opts: Options, root: Path, name: str, runtime: str, body: bytes, label: str) -> None:
    (ours, base), (ours1, base1) = _pair(
        opts, root, name, runtime, body, connections=[CONNECTIONS, 1]
    )
    report(
        opts,
        f"{label}, loopml serve",
        ours.describe(),
        f"≥ {RPS_GOAL:,} req/s",
        judged(opts, ours.rps >= RPS_GOAL, size_dependent=False),
    )
    report(opts, f"{label}, minimal ASGI app (bare model)", base.describe())
    ratio = ours.rps / base.rps
    report(
        opts,
        f"{label}, loopml serve / minimal app",
        f"{ratio:.0%} of the minimal app's req/s",
        f"≥ {OF_MINIMAL_GOAL:.0%}",
        judged(opts, ratio >= OF_MINIMAL_GOAL, size_dependent=False),
    )
    report(
        opts,
        f"{label}, loopml serve, unloaded latency",
        f"{ours1.latency()} at 1 connection ({ours1.rps:,.0f} req/s; {ours1.context()})",
        f"p50 < {P50_GOAL_S * 1000:g} ms",
        judged(opts, ours1.p50 < P50_GOAL_S, size_dependent=False),
    )
    report(
        opts,
        f"{label}, minimal ASGI app, unloaded latency",
        f"{base1.latency()} at 1 connection ({base1.rps:,.0f} req/s; {base1.context()})",
    )


def bench_batches(opts: Options) -> None:
    with project() as (root, frames):
        for name in SETTINGS["models"]:
            body = records_body(frames[name], BATCH_ROWS)
            for runtime in ("native", "onnx"):
                label = f"{BATCH_ROWS:,}-row requests, {name} ({runtime})"
                why = missing("loopml.serving.onnx") if runtime == "onnx" else None
                if why:
                    report(opts, label, why)
                    continue
                guarded(opts, label, _batches, opts, root, name, runtime, body, label)


def _batches(opts: Options, root: Path, name: str, runtime: str, body: bytes, label: str) -> None:
    ((ours, base),) = _pair(opts, root, name, runtime, body, connections=[BATCH_CONNECTIONS])
    rows, base_rows = ours.rps * BATCH_ROWS, base.rps * BATCH_ROWS
    report(
        opts,
        f"{label}, loopml serve",
        f"{rows:,.0f} rows/s = {ours.describe()}; {len(body) / 1024:,.0f} KiB of JSON records "
        "per request",
        f"≥ {ROWS_GOAL:,} rows/s",
        judged(opts, rows >= ROWS_GOAL, size_dependent=False),
    )
    report(
        opts,
        f"{label}, minimal ASGI app (bare model)",
        f"{base_rows:,.0f} rows/s = {base.describe()}; loopml serve does {rows / base_rows:.0%} "
        "of it",
    )


# -- in process: ONNX vs native -------------------------------------------------------------


def _per_call(fn: Callable[[], Any], seconds: float) -> list[float]:
    fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 20:
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def bench_onnx(opts: Options) -> None:
    from loopml.tracking.client import Client

    why = missing("loopml.serving.onnx")
    with project() as (_, frames):
        client = Client()
        for name in SETTINGS["models"]:
            version = client.model_version(name)
            model = client.load_artifact(version.digest)
            frame = frames[name]
            big = frame.iloc[[i % len(frame) for i in range(BATCH_ROWS)]]
            for data in (frame.iloc[:1], big):
                rows = len(data)
                label = f"in-process predict, {rows:,} row{'s' if rows > 1 else ''}, {name}"
                medians: dict[str, float] = {}
                for runtime in ("native", "onnx"):
                    if runtime == "onnx" and why:
                        report(opts, f"{label} (onnx)", why)
                        continue
                    args = (opts, client, version, model, runtime, data, label, medians)
                    guarded(opts, f"{label} ({runtime})", _in_process, *args)
                if len(medians) == 2:
                    report(
                        opts,
                        f"{label}, ONNX Runtime vs native",
                        f"{medians['native'] / medians['onnx']:.1f}x faster",
                    )


def _in_process(
    opts: Options,
    client: Any,
    version: Any,
    model: Any,
    runtime: str,
    data: Any,
    label: str,
    medians: dict[str, float],
) -> None:
    """``ServedModel.predict`` of one checked batch, called for half the measurement time."""
    from loopml.serving.served import serve_version

    served = serve_version(version, model, runtime=runtime, client=client)
    batch = served.check_columns(data.to_dict(orient="list"), len(data))
    times = _per_call(lambda: served.predict(batch), _seconds(opts) / 2)
    medians[runtime] = median(times)
    report(
        opts,
        f"{label} ({runtime})",
        f"p50 {median(times) * 1e6:,.0f} µs, p99 {percentile(times, 99) * 1e6:,.0f} µs; "
        f"{len(data) / median(times):,.0f} rows/s ({len(times):,} calls)",
    )


# -- prediction logging -------------------------------------------------------------------


def bench_logging(opts: Options) -> None:
    rounds = opts.pick(RUNS, 1)
    server_cpus, client_cpus = cpu_split()
    tool = engine(SETTINGS["loadgen"])
    with project() as (root, frames):
        body = records_body(frames["churn"], 1)
        rps: dict[float, list[float]] = {1.0: [], 0.0: []}
        with (
            serving(loopml_serve_command("churn", runtime="onnx", log_sample=1.0), cwd=root, cpus=server_cpus) as on,
            serving(loopml_serve_command("churn", runtime="onnx", log_sample=0.0), cwd=root, cpus=server_cpus) as off,
        ):  # fmt: skip
            for _ in range(rounds):  # alternated, so a busy moment hits both alike
                for sample, server in ((1.0, on), (0.0, off)):
                    load = measure(
                        server.url,
                        body,
                        seconds=_seconds(opts),
                        connections=CONNECTIONS,
                        tool=tool,
                        cpus=client_cpus,
                        server_pid=server.pid,
                        warmup=_warmup(opts),
                    )
                    rps[sample].append(load.rps)
            time.sleep(2.0)  # the log writes in batches: let the last one land
            text = on.get("/metrics")
        logged, dropped = (
            metric_value(text, f"loopml_prediction_log_{k}_rows") for k in ("written", "dropped")
        )
        predicted = metric_value(text, "loopml_rows_predicted_total")
    with_log, without = median(rps[1.0]), median(rps[0.0])
    cost = 1 - with_log / without
    report(
        opts,
        "prediction logging, churn (onnx), 1 row at 8 connections",
        f"{with_log:,.0f} req/s logging every prediction vs {without:,.0f} req/s with "
        f"--log-sample 0: {cost:.1%} cost (median of {rounds})",
        f"< {LOG_COST_GOAL:.0%}",
        judged(opts, cost < LOG_COST_GOAL, size_dependent=False),
    )
    report(
        opts,
        "prediction logging, rows logged",
        f"{logged or 0:,.0f} written, {dropped or 0:,.0f} dropped, of {predicted or 0:,.0f} predicted",
    )


BENCHMARKS: dict[str, Callable[[Options], None]] = {
    "online": bench_online,
    "batches": bench_batches,
    "scoring": bench_scoring,
    "onnx": bench_onnx,
    "logging": bench_logging,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--seconds", type=float, default=0.0, help="per measurement (10; 2 quick)")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"which of {', '.join(MODELS)} to measure"
    )
    known, rest = parser.parse_known_args(argv)
    models = tuple(m for m in known.models.split(",") if m)
    if not models or set(models) - set(MODELS):
        parser.error(f"--models: choose from {', '.join(MODELS)}")
    SETTINGS.update(seconds=known.seconds, loadgen=known.loadgen, models=models)
    server_cpus, client_cpus = cpu_split()
    print(f"# command: {Path(sys.executable).name} bench/serving.py {' '.join(argv)}".rstrip())
    print(
        f"# load generator: {engine(known.loadgen)}; server CPUs {sorted(server_cpus or [])}, "
        f"load generator CPUs {sorted(client_cpus or [])} (of {len(os.sched_getaffinity(0))} "
        "usable; unpinned when fewer than 2)",
        flush=True,
    )
    return run("bench/serving.py", __doc__.splitlines()[0], BENCHMARKS, rest)


if __name__ == "__main__":
    sys.exit(main())
