"""R12 (run heartbeat part): a dead run holder is taken over within its lease; a live one never is.

Ownership of a running run is its lease (``heartbeat_at + lease_s``) and its token, never
"is that PID alive": a planted run whose PID belongs to an unrelated live process but whose
heartbeat expired is still swept, and a run whose PID is dead but whose lease is fresh is
left alone. Children run ``_scripts/r12_holder.py`` with a 0.3 s heartbeat (lease 0.75 s).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from loopml.tracking.client import Client

SCRIPT = Path(__file__).parent / "_scripts" / "r12_holder.py"
HEARTBEAT_S = 0.3
LEASE_S = 2.5 * HEARTBEAT_S


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HEARTBEAT_SECONDS"] = str(HEARTBEAT_S)
    return env


def _holder(project: Path, seconds: float, name: str) -> tuple[subprocess.Popen[bytes], str]:
    ready = project / f"{name}.ready"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(ready), str(seconds)],
        cwd=project,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120  # a hang guard: starting takes ~0.5 s idle
    while not ready.exists():
        assert proc.poll() is None, f"holder exited early with {proc.returncode}"
        assert time.monotonic() < deadline, "holder never became ready"
        time.sleep(0.005)
    return proc, ready.read_text()


def _status(run_id: str) -> str:
    """What a newly started process sees: a fresh Client (open() sweeps expired leases)."""
    client = Client()
    try:
        return client.open().metadata.runs.get(run_id).status
    finally:
        client.close()


def test_r12_sigkilled_run_holder_is_taken_over_within_the_lease(project: Path) -> None:
    rng = random.Random(12)
    latencies = []
    for i in range(5):
        proc, run_id = _holder(project, 60, f"h{i}")
        time.sleep(rng.uniform(0.0, 2 * HEARTBEAT_S))  # land anywhere in the heartbeat cycle
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        killed = time.time()  # the holder is reaped: its last heartbeat is older than this
        while True:
            opened = time.time()
            status = _status(run_id)
            if status != "running":
                break
            # The takeover bound, as an event rather than a stopwatch: a process that starts
            # once the lease is over must see the run crashed, however slow that start is.
            assert opened < killed + LEASE_S, (
                f"dead holder's run still running for a Client opened "
                f"{opened - killed:.2f} s after SIGKILL, past its {LEASE_S:.2f} s lease"
            )
            time.sleep(0.01)
        latencies.append(time.time() - killed)
        assert status == "crashed"
        assert _status(run_id) == "crashed"  # and stays so
    print(
        f"\nR12 run heartbeat: takeover latency after SIGKILL p50 {statistics.median(latencies):.3f} s, "
        f"max {max(latencies):.3f} s (lease {LEASE_S:.2f} s; the latency includes opening a Client)"
    )


def test_r12_live_run_is_never_taken_over(project: Path) -> None:
    proc, run_id = _holder(project, 4.0, "live")
    seen = []
    while proc.poll() is None:
        seen.append(_status(run_id))
        time.sleep(0.1)
    proc.wait(timeout=10)
    seen.append(_status(run_id))
    # The holder may end its run just before it exits: "running" until then, never "crashed".
    first_end = seen.index("succeeded")
    assert set(seen[:first_end]) == {"running"}, seen
    assert set(seen[first_end:]) == {"succeeded"}, seen


def _plant(client: Client, *, pid: int, heartbeat_age_s: float, lease_s: float) -> tuple[str, str]:
    record, token = client.metadata.runs.create(
        pipeline="planted",
        host=socket.gethostname(),
        pid=pid,
        executor="local",
        lease_s=lease_s,
    )
    stale = time.time() - heartbeat_age_s
    client.metadata.db.write(
        lambda tx: tx.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (stale, record.id))
    )
    return record.id, token


def test_r12_ownership_is_the_lease_not_the_pid(client: Client, store_url: str) -> None:
    live_pid = os.getppid()
    os.kill(live_pid, 0)  # an unrelated process that is alive
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead_pid = (
        child.pid
    )  # reaped: nothing runs under it (unless recycled, which changes nothing here)

    expired_id, expired_token = _plant(client, pid=live_pid, heartbeat_age_s=60, lease_s=LEASE_S)
    fresh_id, fresh_token = _plant(client, pid=dead_pid, heartbeat_age_s=0, lease_s=60)

    started = time.monotonic()
    second = Client(store_uri=store_url)
    try:
        second.open()
        latency = time.monotonic() - started
        assert second.metadata.runs.get(expired_id).status == "crashed"
        assert second.metadata.runs.get(fresh_id).status == "running"
    finally:
        second.close()
    # The swept run cannot be revived by its old owner; the fresh one is still its owner's.
    assert client.metadata.runs.heartbeat(expired_id, expired_token) is False
    assert client.metadata.runs.finish(expired_id, expired_token, "succeeded") is False
    assert client.metadata.runs.get(expired_id).status == "crashed"
    assert client.metadata.runs.finish(fresh_id, fresh_token, "succeeded") is True
    print(
        f"\nR12 planted run (live unrelated pid {live_pid}, expired lease): swept by the next open in {latency * 1000:.0f} ms"
    )
