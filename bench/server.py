"""loopml REST API benchmarks (`loopml server`): list latency, mixed load, start-up.

Usage::

    .venv/bin/python bench/server.py            # 100,000 runs (a minute or two)
    .venv/bin/python bench/server.py --quick    # 2,000 runs, short windows (smoke test)
    .venv/bin/python bench/server.py --only list,mixed

- ``list``: ``GET /api/runs`` with a filter and a sort, first page of 100, over real HTTP
  (keep-alive, reader token, auth on) against a server process over 100,000 runs; p50/p99.
- ``mixed``: 8 client threads reading that page while 4 processes log metrics into the same
  store through the Python client; requests/s, errors, metric points/s.
- ``startup``: whole-process start-up of ``loopml server`` to the first 200 on ``/health``.
- ``scheduler``: fire-to-start delay of a trivial pipeline in child processes (due time to
  the run's ``started_at``; goal under 1 s), and exactly-once counts over 1,000 fire times
  with two scheduler processes on an accelerated clock (``bench/_scheduler.py``).

The server runs in its own process (uvicorn, as ``loopml server`` runs it), so clients and
server share no GIL. Runs are inserted in bulk through the store's own transaction (as
``bench/core.py`` does). Figures are printed, never asserted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import main as run  # noqa: E402
from _scheduler import bench_scheduler  # noqa: E402
from _timing import (  # noqa: E402
    PYTHON,
    Options,
    fmt_ms,
    judged,
    median,
    percentile,
    report,
    temp_project,
)
from _tracking import _fill  # noqa: E402

LIST_BUDGET_S = 0.010  # p50 of the filtered first page (issue 17's goal)
QUERY = {"filter": "metrics.rmse < 3 and params.alpha >= 0.1", "sort": "-metrics.rmse"}
SERVE = (
    "import sys, uvicorn\n"
    "from loopml.tracking.client import Client\n"
    "from loopml.server.app import create_app\n"
    "app = create_app(Client().open(), auth=True)\n"
    "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')\n"
)
LOGGER = (
    "import sys, time\n"
    "from loopml.tracking.client import Client\n"
    "client = Client(readonly=False).open()\n"
    "end, n = time.time() + float(sys.argv[1]), 0\n"
    "with client.start_run('metric-logger') as run:\n"
    "    while time.time() < end:\n"
    "        for i in range(200):\n"
    "            run.log_metric('loss', 1.0 / (n + i + 1), step=n + i)\n"
    "        n += 200\n"
    "print(n)\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_command(port: int) -> tuple[list[str], str]:
    """``loopml server`` when this build has it, else the same app on uvicorn from Python."""
    from loopml.cli.main import COMMANDS

    if "server" in COMMANDS:
        main = "from loopml.cli.main import main; main()"  # `loopml` of this Python
        return [PYTHON, "-c", main, "server", "--port", str(port)], "`loopml server`"
    return [PYTHON, "-c", SERVE, str(port)], "create_app on uvicorn (no `loopml server` yet)"


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> float:
    """Seconds until ``/health`` answers 200 (polled: this measures the server, not a test)."""
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return time.perf_counter() - started
        time.sleep(0.005)
    raise RuntimeError(f"the server did not answer /health within {timeout_s} s")


@contextlib.contextmanager
def _server(root: Path) -> Iterator[str]:
    port = _free_port()
    command, _ = _server_command(port)
    proc = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _reader_token() -> str:
    from loopml.tracking.client import Client

    client = Client(readonly=False).open()
    secret: str = client.metadata.tokens.create(f"bench-{os.getpid()}", "reader", by="bench")[1]
    client.close()
    return secret


def _filled(opts: Options, root: Path) -> tuple[int, float, str]:
    from loopml.tracking.client import Client

    n = opts.pick(100_000, 2_000)
    client = Client(readonly=False).open()
    started = time.perf_counter()
    _fill(client.metadata, n)
    fill_s = time.perf_counter() - started
    client.close()
    return n, fill_s, _reader_token()


def bench_list(opts: Options) -> None:
    import httpx

    with temp_project("server-list") as root:
        n, fill_s, token = _filled(opts, root)
        with (
            _server(root) as url,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http,
        ):
            params = {**QUERY, "limit": 100}
            for _ in range(5):
                http.get("/api/runs", params=params).raise_for_status()
            times, items = [], 0
            for _ in range(opts.pick(300, 40)):
                t0 = time.perf_counter()
                answer = http.get("/api/runs", params=params)
                times.append(time.perf_counter() - t0)
                items = len(answer.raise_for_status().json()["items"])
        p50, p99 = median(times), percentile(times, 99)
        report(
            opts,
            f"GET /api/runs over {n:,} runs (filtered, sorted, first page)",
            f"p50 {fmt_ms(p50)}, p99 {fmt_ms(p99)} over {len(times)} requests ({items} items "
            f"a page; `{QUERY['filter']}` sorted by {QUERY['sort']}; keep-alive, reader token; "
            f"SQLite; bulk insert took {fill_s:.1f} s)",
            f"p50 < {LIST_BUDGET_S * 1000:g} ms",
            judged(opts, p50 < LIST_BUDGET_S),
        )


def bench_mixed(opts: Options) -> None:
    import httpx

    seconds = opts.pick(10.0, 1.0)
    with temp_project("server-mixed") as root:
        n, _, token = _filled(opts, root)
        with _server(root) as url:
            loggers = [
                subprocess.Popen(
                    [PYTHON, "-c", LOGGER, str(seconds + 1)], cwd=root, stdout=subprocess.PIPE
                )
                for _ in range(4)
            ]
            ok, errors, lock = [0], [0], threading.Lock()
            end = time.perf_counter() + seconds
            params = {**QUERY, "limit": 100}

            def reader() -> None:
                with httpx.Client(
                    base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
                ) as http:
                    good = bad = 0
                    while time.perf_counter() < end:
                        try:
                            status = http.get("/api/runs", params=params).status_code
                        except httpx.HTTPError:
                            status = 0
                        good += status == 200
                        bad += status != 200
                    with lock:
                        ok[0] += good
                        errors[0] += bad

            started = time.perf_counter()
            threads = [threading.Thread(target=reader) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            points = [int(p.communicate(timeout=120)[0] or 0) for p in loggers]
            failed_loggers = sum(p.returncode != 0 for p in loggers)
    total = sum(points)
    report(
        opts,
        "8 readers of GET /api/runs while 4 processes log metrics",
        f"{ok[0] / elapsed:,.1f} requests/s, {errors[0]} errors (transport or non-200); "
        f"loggers wrote {total / (seconds + 1):,.0f} points/s in all, "
        f"{failed_loggers} crashed ({n:,} runs, {seconds:g} s, SQLite)",
    )


def bench_startup(opts: Options) -> None:
    times, label = [], ""
    for _ in range(opts.pick(5, 1)):
        with temp_project("server-startup") as root:
            port = _free_port()
            command, label = _server_command(port)
            began = time.perf_counter()
            proc = subprocess.Popen(
                command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                _wait_healthy(f"http://127.0.0.1:{port}", proc)
                times.append(time.perf_counter() - began)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    report(
        opts,
        "server start-up, whole process to first 200 on /health",
        f"median {fmt_ms(median(times))}, min {fmt_ms(min(times))} over {len(times)} starts "
        f"({label}; new project, the store created on start)",
    )


BENCHMARKS = {
    "list": bench_list,
    "mixed": bench_mixed,
    "startup": bench_startup,
    "scheduler": bench_scheduler,
}


def main(argv: list[str] | None = None) -> int:
    return run("bench/server.py", __doc__.splitlines()[0], BENCHMARKS, argv)


if __name__ == "__main__":
    sys.exit(main())
