"""An HTTP/1.1 load generator for the serving benchmark: ``wrk`` when installed, else our own.

Both engines keep ``connections`` keep-alive connections busy, each with one request in
flight (closed loop): a response arrives, the next request goes out on that connection. A
latency is send-to-last-byte of one request, so at 1 connection it is the server's
unloaded latency, and at 8 it includes queueing behind the other 7.

The fallback engine is lean enough not to be the bottleneck: each worker process drives its
connections from one epoll loop over blocking sockets, sends pre-encoded request bytes and
reads responses by ``Content-Length`` (about 20 µs of client CPU per request, so one worker
keeps up with a server doing tens of thousands of requests per second). Workers run as
separate processes (this file is their entry point), so they share no GIL with the
benchmark or with the server. The client's CPU share is reported next to every figure: a
load generator near 100 % of its core means the figure is the client's, not the server's.
"""

from __future__ import annotations

import json
import os
import re
import resource
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _timing import percentile

WARMUP_S = 1.0  # before each measured window; --quick runs pass a shorter one


@dataclass(frozen=True)
class Load:
    """What one measurement saw: completed requests, their latencies, and who was busy."""

    tool: str
    connections: int
    seconds: float
    requests: int
    errors: int
    p50: float  # seconds
    p99: float
    client_cpu: float  # share of one core the load generator used
    server_cpu: float | None  # share of one core the server used, when readable

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def latency(self) -> str:
        return f"p50 {self.p50 * 1000:.2f} ms, p99 {self.p99 * 1000:.2f} ms"

    def context(self) -> str:
        """Who was busy and how much was measured: the line's closing parenthesis."""
        server = "" if self.server_cpu is None else f"server CPU {self.server_cpu:.0%}, "
        errors = f", {self.errors:,} errors" if self.errors else ""
        return (
            f"{server}{self.tool} CPU {self.client_cpu:.0%}; {self.requests:,} requests in "
            f"{self.seconds:.3g} s{errors}"
        )

    def describe(self) -> str:
        """``N req/s at C connections (p50, p99; context)``."""
        plural = "s" if self.connections > 1 else ""
        return (
            f"{self.rps:,.0f} req/s at {self.connections} connection{plural} "
            f"({self.latency()}; {self.context()})"
        )


def request_bytes(host: str, port: int, path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def engine(choice: str = "auto") -> str:
    """``wrk`` if asked for or found on PATH (``auto``), else ``python``."""
    if choice == "python" or (choice == "auto" and shutil.which("wrk") is None):
        return "python"
    if shutil.which("wrk") is None:
        raise RuntimeError("--loadgen wrk: wrk is not on PATH (apt-get install wrk)")
    return "wrk"


def measure(
    url: str,
    body: bytes,
    *,
    seconds: float,
    connections: int,
    path: str = "/predict",
    content_type: str = "application/json",
    tool: str = "python",
    cpus: set[int] | None = None,
    server_pid: int | None = None,
    warmup: float = WARMUP_S,
) -> Load:
    """Load ``url + path`` with POSTs of ``body`` for ``seconds`` after ``warmup`` seconds."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    args = (host, int(port), path, body, content_type, seconds, connections, cpus, server_pid)
    return _wrk(*args, warmup) if tool == "wrk" else _python(*args, warmup)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int | None) -> float | None:
    """CPU seconds used so far by process ``pid`` (all its threads), from /proc; None if unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _server_share(pid: int | None, start: float, end: float) -> float | None:
    """The server's CPU share over the wall-clock window [start, end] (sleeps through it)."""
    time.sleep(max(0.0, start - time.time()))
    before = process_cpu(pid)
    time.sleep(max(0.0, end - time.time()))
    after = process_cpu(pid)
    if before is None or after is None:
        return None
    return (after - before) / (end - start)


def _pin(cpus: set[int] | None) -> Any:
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _python(
    host: str,
    port: int,
    path: str,
    body: bytes,
    content_type: str,
    seconds: float,
    connections: int,
    cpus: set[int] | None,
    server_pid: int | None,
    warmup: float,
) -> Load:
    workers = max(1, min(connections // 8, len(cpus) if cpus else 1))
    per = [connections // workers + (i < connections % workers) for i in range(workers)]
    folder = Path(tempfile.mkdtemp(prefix="loopml-bench-load-"))
    try:
        request = folder / "request"
        request.write_bytes(request_bytes(host, port, path, body, content_type))
        start = time.time() + warmup + 0.5  # workers connect and warm up before the window
        end = start + seconds
        cpu = _children_cpu()
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, host, str(port), str(start), str(end), str(n)]
                + [str(request)],
                stdout=subprocess.PIPE,
                preexec_fn=_pin(cpus),  # noqa: PLW1509 (only sched_setaffinity, async-safe)
            )
            for n in per
        ]
        server_cpu = _server_share(server_pid, start, end)
        results = [json.loads(p.communicate(timeout=seconds + 120)[0]) for p in procs]
        client_wall = sum(r["wall"] for r in results) or 1.0
        client_cpu = (_children_cpu() - cpu) / client_wall * len(results)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    latencies = sorted(x for r in results for x in r["latencies"])
    if not latencies:
        raise RuntimeError(f"no request completed in {seconds:g} s ({results[0]['note']})")
    return Load(
        tool="python load generator",
        connections=connections,
        seconds=seconds,
        requests=len(latencies),
        errors=sum(r["errors"] for r in results),
        p50=percentile(latencies, 50) / 1e6,
        p99=percentile(latencies, 99) / 1e6,
        client_cpu=client_cpu,
        server_cpu=server_cpu,
    )


_WRK_LAT = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def _wrk(
    host: str,
    port: int,
    path: str,
    body: bytes,
    content_type: str,
    seconds: float,
    connections: int,
    cpus: set[int] | None,
    server_pid: int | None,
    warmup: float,
) -> Load:
    folder = Path(tempfile.mkdtemp(prefix="loopml-bench-wrk-"))
    try:
        script = folder / "post.lua"
        text = body.decode()
        if "]==]" in text:
            raise RuntimeError("request body cannot be quoted for wrk's Lua script")
        script.write_text(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "{content_type}"\n'
            f"wrk.body = [==[{text}]==]\n",
            encoding="utf-8",
        )
        base = ["wrk", "-t1", f"-c{connections}", "--latency", "-s", str(script)]
        target = f"http://{host}:{port}{path}"
        warm = f"-d{max(1, round(warmup))}s"
        subprocess.run([*base, warm, target], capture_output=True, check=True, timeout=60)
        cpu = _children_cpu()
        started = time.time()
        seconds = max(1, round(seconds))  # wrk takes whole seconds
        proc = subprocess.Popen(
            [*base, f"-d{seconds}s", target],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_pin(cpus),  # noqa: PLW1509
        )
        # wrk connects before its clock starts; the window skips its first 0.2 s.
        server_cpu = _server_share(server_pid, started + 0.2, started + seconds - 0.1)
        out = proc.communicate(timeout=seconds + 60)[0]
        wall = time.time() - started
        client_cpu = (_children_cpu() - cpu) / wall
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    lat = {q: float(v) * _WRK_UNITS[u] for q, v, u in _WRK_LAT.findall(out)}
    if proc.returncode != 0 or done is None or set(lat) != {"50", "99"}:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}):\n{out}")
    took = float(done.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return Load(
        tool="wrk",
        connections=connections,
        seconds=took,
        requests=int(done.group(1)),
        errors=errors,
        p50=lat["50"],
        p99=lat["99"],
        client_cpu=client_cpu,
        server_cpu=server_cpu,
    )


# -- the worker process -----------------------------------------------------------------


def _worker(host: str, port: int, start: float, end: float, n: int, request: bytes) -> dict:
    """Closed-loop requests on ``n`` connections; latencies (µs) of those sent in the window."""
    began = time.perf_counter()
    offset = time.time() - time.perf_counter()
    start, end = start - offset, end - offset
    poller = select.epoll()
    conns: dict[int, list[Any]] = {}  # fd -> [socket, buffer, sent_at, body_end]
    for _ in range(n):
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns[sock.fileno()] = [sock, bytearray(), time.perf_counter(), -1]
        poller.register(sock.fileno(), select.EPOLLIN)
        sock.sendall(request)
    latencies: list[int] = []
    errors, note = 0, ""
    while conns:
        for fd, _ in poller.poll(1.0):
            conn = conns[fd]
            sock, buf = conn[0], conn[1]
            chunk = sock.recv(1 << 18)
            now = time.perf_counter()
            if not chunk:
                errors, note = errors + 1, "the server closed a connection"
                poller.unregister(fd)
                del conns[fd]
                continue
            buf += chunk
            if conn[3] < 0:
                head = buf.find(b"\r\n\r\n")
                if head < 0:
                    continue
                found = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", bytes(buf[:head]))
                if found is None:
                    raise RuntimeError(f"a response without Content-Length: {bytes(buf[:200])!r}")
                conn[3] = head + 4 + int(found.group(1))
            if len(buf) < conn[3]:
                continue
            ok = buf[9:12] == b"200"
            if not ok and not note:
                note = f"first error: {bytes(buf[: min(conn[3], 400)])!r}"
            del buf[: conn[3]]
            conn[3] = -1
            if conn[2] >= start and now <= end:
                latencies.append(round((now - conn[2]) * 1e6))
                errors += not ok
            if now >= end:
                poller.unregister(fd)
                sock.close()
                del conns[fd]
                continue
            conn[2] = time.perf_counter()
            sock.sendall(request)
    return {
        "latencies": latencies,
        "errors": errors,
        "note": note,
        "wall": time.perf_counter() - began,
    }


if __name__ == "__main__":
    h, p, s, e, k, r = sys.argv[1:7]
    result = _worker(h, int(p), float(s), float(e), int(k), Path(r).read_bytes())
    sys.stdout.write(json.dumps(result))
