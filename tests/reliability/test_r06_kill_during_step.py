"""R06: SIGKILL a pipeline run mid-step, again and again; the store stays whole.

CI size: 20 kills at random moments (offsets from a seeded RNG covering the whole run,
from store set-up to the last step's commit) plus 15 at the test-only crash points of
``loopml._crashpoints`` (during a blob write, between a blob's rename and its row's
commit, and inside a DB write transaction before its commit), of a 5-step pipeline whose
first step writes a 20 MB blob. The plan says 50 kills and a 200 MB blob; both are cut to
keep this file under ~2 min on the 2-core CI machine.

After each kill:

1. a Client opened after the lease sees the run ``crashed`` (never ``running``), and
   the time from the kill to that observation is the crash-detection latency;
2. that open removed the dead writer's temp files (leftovers must be 0);
3. SQLite ``PRAGMA integrity_check`` is ``ok`` and ``loopml fsck --json`` finds no missing,
   corrupt, dangling or database problem. A kill between a blob's publish and its row's
   commit leaves an *orphan* blob, which is by design (``gc`` reclaims it); every orphan
   must still hash to its name, i.e. no partial blob is visible under a digest;
4. re-running with the same parameters reuses exactly the steps that completed before the
   kill, and afterwards fsck reports nothing at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cli_runner import run_cli
from loopml.config import load_settings
from loopml.tracking.client import Client
from loopml.tracking.fsck import fsck

SCRIPTS = Path(__file__).parent / "_scripts"
SOAK = bool(
    os.environ.get("LOOPML_SOAK")
)  # soak size on demand: LOOPML_SOAK=1 (and R06_BLOB_MB=200)
KILLS = 500 if SOAK else 20
HEARTBEAT_S = 0.3
LEASE_S = 2.5 * HEARTBEAT_S
SEED = 20240606


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HEARTBEAT_SECONDS"] = str(HEARTBEAT_S)
    return env


def _client(project: Path) -> Client:
    root = project / ".loopml"
    return Client(
        load_settings(project),
        store_uri=f"sqlite:///{root / 'store.db'}",
        artifacts_uri=str(root / "blobs"),
    )


def _start_child(
    project: Path, seed: int, crash_at: str | None = None
) -> tuple[subprocess.Popen[bytes], float]:
    """Start a run of ``r06(seed)``; returns the process and when it was about to start the run."""
    ready = project / "ready.txt"
    ready.unlink(missing_ok=True)
    env = _env()
    if crash_at:
        env["LOOPML_CRASH_AT"] = crash_at
    with (project / "child-stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "r06_child.py"), str(seed), str(ready)],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(
                f"r06 child exited early: {(project / 'child-stderr.txt').read_text()}"
            )
        assert time.monotonic() < deadline, "r06 child never became ready"
        time.sleep(0.005)
    return proc, time.monotonic()


def _run_ids(project: Path) -> set[str]:
    client = _client(project)
    try:
        return {r.id for r in client.open().search_runs(limit=10_000)}
    finally:
        client.close()


def _observe_crash(project: Path, run_id: str, killed_at: float) -> tuple[float | None, int]:
    """Open fresh Clients until the run is ``crashed``; returns (latency, temp files left after the first open).

    A kill that lands after the run committed ``succeeded`` (the process was exiting)
    returns latency None.
    """
    leftovers = -1
    deadline = killed_at + LEASE_S + 5
    while True:
        client = _client(project)
        try:
            client.open()
            if leftovers < 0:
                leftovers = sum(1 for _ in client.artifacts.iter_temp())
            status = client.metadata.runs.get(run_id).status
        finally:
            client.close()
        now = time.monotonic()
        if status == "crashed":
            return now - killed_at, leftovers
        if status == "succeeded":
            return None, leftovers
        assert status == "running", f"killed run {run_id[:8]} became {status!r}, expected crashed"
        assert now < deadline, (
            f"killed run {run_id[:8]} still running {now - killed_at:.2f} s after SIGKILL"
        )
        time.sleep(0.02)


def _completed_steps(project: Path, run_id: str) -> tuple[int, list[str]]:
    client = _client(project)
    try:
        steps = client.open().metadata.steps.for_run(run_id)
    finally:
        client.close()
    return sum(1 for s in steps if s.status == "succeeded"), [s.status for s in steps]


def _check_store(project: Path) -> int:
    """integrity_check + ``loopml fsck --json``; returns how many (complete) orphan blobs exist."""
    db = sqlite3.connect(project / ".loopml" / "store.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    result = run_cli("fsck", "--json", cwd=project, env=_env())
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    serious = [p for p in report["problems"] if p["kind"] != "orphan"]
    assert serious == [], serious
    for p in report["problems"]:
        assert hashlib.sha256(Path(p["path"]).read_bytes()).hexdigest() == p["digest"], (
            f"partial blob visible: {p}"
        )
    return len(report["problems"])


def test_r06_kill_dash_nine_mid_step(project: Path) -> None:
    shutil.copy(SCRIPTS / "r06_pipeline.py", project / "pipelines.py")
    rng = random.Random(SEED)

    # One uninterrupted run measures how long a run lasts, so kills can land anywhere in it.
    proc, started = _start_child(project, seed=-1)
    assert proc.wait(timeout=60) == 0, (project / "child-stderr.txt").read_text()
    duration = time.monotonic() - started

    latencies: list[float] = []
    leftovers = orphans = cache_hits = runs_killed = finished_first = 0
    rows: list[str] = []
    for i in range(KILLS):
        before = _run_ids(project)
        offset = rng.uniform(0.0, 0.9 * duration)
        proc, started = _start_child(project, seed=i)
        time.sleep(max(0.0, started + offset - time.monotonic()))
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(timeout=10)

        new = _run_ids(project) - before
        assert len(new) <= 1, new
        completed, statuses = 0, []
        if new:
            run_id = new.pop()
            latency, left = _observe_crash(project, run_id, killed_at)
            leftovers += left
            completed, statuses = _completed_steps(project, run_id)
            if latency is None:
                assert completed == 5, statuses  # only a complete run may be succeeded
                finished_first += 1
            else:
                latencies.append(latency)
                runs_killed += 1
        else:  # killed before the run row was written: nothing to mark, still must be clean
            client = _client(project)
            try:
                leftovers += sum(1 for _ in client.open().artifacts.iter_temp())
            finally:
                client.close()
        orphans += _check_store(project)

        rerun = run_cli("run", "r06", "-p", f"seed={i}", "--json", cwd=project, env=_env())
        assert rerun.returncode == 0, rerun.stderr
        data = json.loads(rerun.stdout)
        assert data["status"] == "succeeded"
        assert data["cached_steps"] == completed, (i, offset, statuses, data["cached_steps"])
        cache_hits += data["cached_steps"]
        rows.append(
            f"  kill {i:>2} at {offset:5.2f} s: {completed}/5 steps done, {data['cached_steps']} cache hits on re-run; steps {statuses}"
        )

        client = _client(project)
        try:
            problems, _ = fsck(client)
        finally:
            client.close()
        assert problems == [], problems

    p50 = statistics.median(latencies) if latencies else float("nan")
    worst = max(latencies, default=float("nan"))
    print(
        f"\nR06: {KILLS} kills over a {duration:.2f} s run ({runs_killed} runs crashed mid-run, {finished_first} had already succeeded, "
        f"{KILLS - runs_killed - finished_first} killed before the run row); "
        f"crash-detection latency p50 {p50:.3f} s, max {worst:.3f} s (lease {LEASE_S:.2f} s); "
        f"leftover temp files after the next start: {leftovers}; orphan blobs (complete) after kills: {orphans}; "
        f"cache hits on re-runs: {cache_hits}\n" + "\n".join(rows)
    )
    assert leftovers == 0
    assert runs_killed >= KILLS // 2
    assert worst <= LEASE_S + 1.0


def test_r06_a_crashed_run_has_no_running_steps(project: Path) -> None:
    shutil.copy(SCRIPTS / "r06_pipeline.py", project / "pipelines.py")
    proc, _ = _start_child(project, seed=99)
    db_path = project / ".loopml" / "store.db"
    deadline = time.monotonic() + 30
    while True:  # plain reads: opening a Client here would sweep, which is what we test next
        db = sqlite3.connect(db_path, timeout=30)
        try:
            running = db.execute("SELECT run_id FROM step_runs WHERE status = 'running'").fetchall()
        finally:
            db.close()
        if running:
            break
        assert time.monotonic() < deadline and proc.poll() is None, "no step was ever seen running"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    run_id = running[0][0]
    latency, _ = _observe_crash(project, run_id, time.monotonic())
    assert latency is not None
    _, statuses = _completed_steps(project, run_id)
    assert "running" not in statuses and "pending" not in statuses, statuses


# point -> which pass to die at; a run makes ~6 blobs and ~25 write transactions
CRASH_POINTS = {
    "blob-written": (1, 2, 3, 4, 5),
    "blob-published": (1, 2, 3, 4, 5),
    "db-commit": (2, 7, 12, 17, 22),
}


def test_r06_kill_at_the_dangerous_moments(project: Path) -> None:
    """SIGKILL exactly where a crash could corrupt: the same invariants must hold."""
    shutil.copy(SCRIPTS / "r06_pipeline.py", project / "pipelines.py")
    proc, _ = _start_child(project, seed=-1)  # creates the store before the first kill
    assert proc.wait(timeout=60) == 0, (project / "child-stderr.txt").read_text()
    rows = []
    kills = 0
    for index, (point, passes) in enumerate(CRASH_POINTS.items()):
        for nth in passes:
            seed = 1000 + 100 * index + nth
            before = _run_ids(project)
            proc, _ = _start_child(project, seed=seed, crash_at=f"{point}:{nth}")
            code = proc.wait(timeout=60)
            killed_at = time.monotonic()
            if code == 0:  # the run passed this point fewer than nth times
                rows.append(f"  {point}:{nth}: not reached, run finished")
                continue
            assert code == -signal.SIGKILL, (project / "child-stderr.txt").read_text()
            kills += 1
            new = _run_ids(project) - before
            completed = 0
            if new:
                run_id = new.pop()
                latency, left = _observe_crash(project, run_id, killed_at)
                assert latency is not None and left == 0
                completed, _ = _completed_steps(project, run_id)
            _check_store(project)
            rerun = run_cli("run", "r06", "-p", f"seed={seed}", "--json", cwd=project, env=_env())
            assert rerun.returncode == 0, rerun.stderr
            data = json.loads(rerun.stdout)
            assert data["cached_steps"] == completed
            client = _client(project)
            try:
                problems, _ = fsck(client)
            finally:
                client.close()
            assert problems == [], problems
            rows.append(
                f"  {point}:{nth}: killed, {completed}/5 steps done, re-run reused {completed}"
            )
    print(f"\nR06 crash points: {kills} kills at test-only hook points\n" + "\n".join(rows))
    assert kills >= 10
