"""A real local Ray cluster for tests: a head node and one worker node, on loopback only.

``start_ray_cluster(base)`` runs ``ray start --head`` and ``ray start --address=…`` (one
worker node offering the custom resource ``special``) and returns a :class:`RayCluster`
once both nodes are up; ``stop()`` ends exactly the processes this cluster started (found by
its own temporary folder in their command lines), never other Ray clusters of the machine.

Loopback: Ray turns ``--node-ip-address=127.0.0.1`` into the machine's interface address
(``resolve_ip_for_localhost``) and binds its servers there. The nodes are therefore started
through a small launcher that keeps 127.0.0.1 as given, with
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in their environment so every process they start
(agents, the Ray Client server, workers) also takes 127.0.0.1 as the node address. Every
port is chosen on 127.0.0.1; :meth:`RayCluster.sockets` lists the cluster's sockets so the
tests can check that none uses another address.

This module does not import pytest; Ray itself is imported only by the started processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

LAUNCHER = """
import os, sys
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # children: node address = loopback
import ray._private.ray_constants as constants
import ray._private.services as services
constants.ENABLE_RAY_CLUSTER = True  # this `ray start` may still join a head
services.resolve_ip_for_localhost = lambda host: host  # keep 127.0.0.1 as given
from ray.scripts.scripts import main
sys.argv[0] = "ray"
main()
"""
START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ports(n: int) -> list[int]:
    """n distinct free ports (held open together so none is handed out twice)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _worker_ports(avoid: set[int]) -> tuple[int, int]:
    """A range of 60 ports for worker processes, free now (Ray binds them as workers start)
    and clear of the ports in ``avoid`` (given to other components)."""
    for _ in range(50):
        start = free_port()
        if start > 64000 or any(start <= port < start + 60 for port in avoid):
            continue
        try:
            for port in range(start, start + 60):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return start, start + 59
    raise RuntimeError("no range of 60 free ports for Ray workers")


@dataclass
class RayCluster:
    """A running test cluster: ``address`` is its Ray Client address (``ray://…``)."""

    temp_dir: Path
    gcs_port: int
    client_port: int
    worker_node_cpus: int
    head_cpus: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def processes(self) -> list[psutil.Process]:
        """Every live process of this cluster (its temporary folder is in their command line
        or environment), workers included."""
        marker = str(self.temp_dir)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                cmdline = " ".join(proc.info["cmdline"] or [])
                if marker in cmdline or _session_of(proc) == marker or _uses(proc, marker):
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        ours = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
        return [p for p in found if p.pid not in ours]

    def sockets(self) -> list[tuple[str, str, int]]:
        """(process name, local address, pid) of every TCP socket of this cluster's processes."""
        found = []
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                for conn in proc.net_connections(kind="tcp"):
                    if conn.laddr:
                        found.append((proc.name(), conn.laddr.ip, proc.pid))
        return found

    def worker_pids(self) -> set[int]:
        """Ray's worker processes (``ray::IDLE``, ``ray::_run_remote``, …)."""
        return {
            p.pid
            for p in self.processes()
            if "default_worker.py" in " ".join(_cmdline(p)) or p.name().startswith("ray::")
        }

    def stop(self) -> None:
        """Stop this cluster's processes (TERM, then KILL) and delete its folder."""
        procs = self.processes()
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGTERM)
        # The workers go at once; gcs_server, the raylets and the runtime-env agents ignored
        # SIGTERM for the whole 10 s every time, and a test cluster needs no graceful end.
        _, alive = psutil.wait_procs(procs, timeout=3)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=10)
        import shutil

        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def _uses(proc: psutil.Process, marker: str) -> bool:
    """Ray's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) retitle themselves,
    which overwrites both their command line and their environment as /proc shows them; they
    are recognised by the log files they keep open in the cluster's folder."""
    if not proc.info["cmdline"] or not proc.info["cmdline"][0].startswith("ray::"):
        return False
    try:
        return any(f.path.startswith(marker) for f in proc.open_files())
    except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
        return False


def _session_of(proc: psutil.Process) -> str | None:
    """Workers name their session folder only in their environment."""
    try:
        session = proc.environ().get("RAY_LOOPML_TEST_CLUSTER")
    except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
        return None
    return session


def _ray(args: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=START_TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args[:2])} failed: see {log}\n{log.read_text()[-3000:]}")


def start_ray_cluster(
    base: Path | None = None, *, head_cpus: int = 20, worker_cpus: int = 2
) -> RayCluster:
    """Start a head node (``head_cpus`` logical CPUs) and a worker node (``worker_cpus``, and
    the custom resource ``special``: 1) on 127.0.0.1; return when both are registered."""
    # Short: Ray's Unix socket paths live under it and must stay below 108 characters.
    temp_dir = Path(tempfile.mkdtemp(prefix="lray-", dir="/tmp"))
    log = (base or temp_dir) / "ray-start.log"
    gcs, client, *agent_ports = _ports(6)
    env = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        # A token file in ~/.ray (left by any earlier Ray session on this machine) would turn
        # token auth on for the head, and the worker node's `ray start` is then refused.
        "RAY_AUTH_MODE": "disabled",
        "RAY_LOOPML_TEST_CLUSTER": str(temp_dir),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("RAY_ADDRESS", None)
    common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    taken = {gcs, client, *agent_ports}
    head_workers = _worker_ports(taken)
    taken |= set(range(head_workers[0], head_workers[1] + 1))
    cluster = RayCluster(temp_dir, gcs, client, worker_cpus, head_cpus, log, env)
    try:
        _ray(
            [
                "start",
                "--head",
                f"--port={gcs}",
                f"--ray-client-server-port={client}",
                f"--num-cpus={head_cpus}",
                "--num-gpus=0",
                "--include-dashboard=false",
                f"--temp-dir={temp_dir}",
                f"--min-worker-port={head_workers[0]}",
                f"--max-worker-port={head_workers[1]}",
                f"--dashboard-agent-listen-port={agent_ports[0]}",
                f"--metrics-export-port={agent_ports[1]}",
                *common,
            ],
            env,
            log,
        )
        worker_workers = _worker_ports(taken)
        _ray(
            [
                "start",
                f"--address={cluster.gcs_address}",
                f"--num-cpus={worker_cpus}",
                "--num-gpus=0",
                '--resources={"special": 1}',
                f"--min-worker-port={worker_workers[0]}",
                f"--max-worker-port={worker_workers[1]}",
                f"--dashboard-agent-listen-port={agent_ports[2]}",
                f"--metrics-export-port={agent_ports[3]}",
                *common,
            ],
            env,
            log,
        )
        _wait_for_nodes(cluster, 2)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for_nodes(cluster: RayCluster, count: int) -> None:
    """Until ``ray status`` lists ``count`` active nodes (both raylets registered)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    script = (
        "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
        "print(sum(1 for n in ray.nodes() if n['Alive']))"
    )
    while True:
        done = subprocess.run(
            [sys.executable, "-c", script, cluster.gcs_address],
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Ray nodes did not register: {done.stdout}\n{done.stderr[-2000:]}")
        time.sleep(0.5)
