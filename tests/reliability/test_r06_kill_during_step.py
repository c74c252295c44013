"""R06: SIGKILL a pipeline run mid-step, again and again; the store stays whole.

CI size: 20 kills at random moments plus 15 at the test-only crash points of
``loopml._crashpoints`` (during a blob write, between a blob's rename and its row's
commit, and inside a DB write transaction before its commit), of a 5-step pipeline whose
first step writes a 20 MB blob. The plan says 50 kills and a 200 MB blob; both are cut to
keep this file around a minute on an idle 2-core CI machine.

The random kills wait on events, never on a clock: the child announces on a pipe each
step as it begins, and its last step never returns. Each kill picks a step at random,
waits for that step's announcement, waits a further random 0-50 ms and kills, so every
kill lands mid-run however slow a busy machine makes the child (a timed offset once sent
13 of 20 kills after the run had already finished).

After each kill:

1. the run is ``crashed`` (never ``running``) for every Client opened after its lease;
   the time from the kill to the first Client that saw it is the crash-detection latency;
2. that open removed the dead writer's temp files (leftovers must be 0);
3. SQLite ``PRAGMA integrity_check`` is ``ok`` and fsck (what ``loopml fsck`` runs) finds
   no missing, corrupt, dangling or database problem. A kill between a blob's publish and
   its row's commit leaves an *orphan* blob, which is by design (``gc`` reclaims it); every
   orphan must still hash to its name, i.e. no partial blob is visible under a digest;
4. re-running with the same parameters (in this process, as ``loopml run`` would) reuses
   exactly the steps that completed before the kill, and afterwards fsck reports nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import random
import select
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

from loopml.config import load_settings
from loopml.tracking.client import Client
from loopml.tracking.fsck import Problem, fsck

SCRIPTS = Path(__file__).parent / "_scripts"
SOAK = bool(
    os.environ.get("LOOPML_SOAK")
)  # soak size on demand: LOOPML_SOAK=1 (and R06_BLOB_MB=200)
KILLS = 500 if SOAK else 20
HEARTBEAT_S = 0.2
LEASE_S = 2.5 * HEARTBEAT_S  # as the run computes it: heartbeat_seconds * LEASE_FACTOR
STEPS = ("raw", "features", "train", "evaluate", "report")
EXTRA_S = 0.05  # a random extra wait after the chosen step announced itself
HANG_S = 120.0  # only for a child that hangs: no step takes anywhere near this long
SEED = 20240606


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LOOPML_") and k not in ("R06_EVENTS_FD", "R06_HOLD")
    }
    env["LOOPML_HEARTBEAT_SECONDS"] = str(HEARTBEAT_S)
    return env


def _client(project: Path) -> Client:
    root = project / ".loopml"
    return Client(
        load_settings(project),
        store_uri=f"sqlite:///{root / 'store.db'}",
        artifacts_uri=str(root / "blobs"),
    )


class _Child:
    """A run of ``r06(seed)`` in a child process, and the events it announces on a pipe.

    With ``hold`` the run's last step never returns (``R06_HOLD``), so the child is alive
    and mid-run until the test kills it. Use it as a context manager: a test that fails
    half-way still kills its child.
    """

    def __init__(
        self, project: Path, seed: int, *, hold: bool = False, crash_at: str | None = None
    ) -> None:
        self.project = project
        self.seen: list[str] = []
        self._pending = b""
        env = _env()
        if hold:
            env["R06_HOLD"] = "1"
        if crash_at:
            env["LOOPML_CRASH_AT"] = crash_at
        self._read, write = os.pipe()
        env["R06_EVENTS_FD"] = str(write)
        try:
            with (project / "child-stderr.txt").open("wb") as err:
                self.proc = subprocess.Popen(
                    [sys.executable, str(SCRIPTS / "r06_child.py"), str(seed)],
                    cwd=project,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    pass_fds=(write,),
                )
        finally:
            os.close(write)  # the child holds the only write end: EOF means it exited

    def __enter__(self) -> _Child:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=HANG_S)
        if self._read >= 0:
            os.close(self._read)
            self._read = -1

    def wait_for(self, event: str) -> None:
        """Block until the child announces ``event``; fail if it exits or hangs first."""
        while event not in self.seen:
            ready, _, _ = select.select([self._read], [], [], HANG_S)
            assert ready, f"r06 child announced nothing for {HANG_S:.0f} s after {self.seen}"
            chunk = os.read(self._read, 4096)
            if not chunk:
                self.proc.wait(timeout=HANG_S)
                raise AssertionError(
                    f"r06 child exited ({self.proc.returncode}) before {event!r} "
                    f"(saw {self.seen}): {(self.project / 'child-stderr.txt').read_text()}"
                )
            *lines, self._pending = (self._pending + chunk).split(b"\n")
            self.seen += [line.decode() for line in lines]

    def kill(self) -> float:
        """SIGKILL the child and reap it; returns the wall-clock time it was surely dead."""
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=HANG_S) == -signal.SIGKILL
        return time.time()

    def wait(self) -> int:
        """Wait for the child to exit by itself (or by a crash point); returns its exit code."""
        return self.proc.wait(timeout=HANG_S)


def _run_ids(project: Path) -> set[str]:
    client = _client(project)
    try:
        return {r.id for r in client.open().search_runs(limit=10_000)}
    finally:
        client.close()


def _observe_crash(project: Path, run_id: str, killed_at: float) -> tuple[float, int]:
    """Open fresh Clients until one sees the run ``crashed``; returns (latency, temp files left after the first open).

    ``killed_at`` is a ``time.time()`` taken once the child was reaped, so its last
    heartbeat is older: a Client opened ``LEASE_S`` after it must sweep the run to
    ``crashed``. Before that the run may still read ``running``, and nothing else is allowed.
    """
    leftovers = -1
    while True:
        opened_at = time.time()
        client = _client(project)
        try:
            client.open()
            if leftovers < 0:
                leftovers = sum(1 for _ in client.artifacts.iter_temp())
            status = client.metadata.runs.get(run_id).status
        finally:
            client.close()
        if status == "crashed":
            return time.time() - killed_at, leftovers
        assert status == "running", f"killed run {run_id[:8]} became {status!r}, expected crashed"
        assert opened_at < killed_at + LEASE_S, (
            f"killed run {run_id[:8]} still running for a Client opened "
            f"{opened_at - killed_at:.2f} s after SIGKILL, past its {LEASE_S:.2f} s lease"
        )
        time.sleep(0.02)


def _completed_steps(project: Path, run_id: str) -> tuple[int, list[str]]:
    client = _client(project)
    try:
        steps = client.open().metadata.steps.for_run(run_id)
    finally:
        client.close()
    return sum(1 for s in steps if s.status == "succeeded"), [s.status for s in steps]


def _fsck(project: Path) -> list[Problem]:
    """What ``loopml fsck`` reports, from a fresh Client (whose open is a "next start")."""
    client = _client(project)
    try:
        problems, _ = fsck(client)
    finally:
        client.close()
    return problems


def _check_store(project: Path) -> int:
    """integrity_check + fsck; returns how many (complete) orphan blobs exist."""
    db = sqlite3.connect(project / ".loopml" / "store.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    problems = _fsck(project)
    serious = [p for p in problems if p.kind != "orphan"]
    assert serious == [], serious
    for p in problems:
        assert hashlib.sha256(Path(p.path).read_bytes()).hexdigest() == p.digest, (
            f"partial blob visible: {p}"
        )
    return len(problems)


@contextlib.contextmanager
def _project_pipelines(project: Path) -> Iterator[types.ModuleType]:
    """The project's ``pipelines`` module, imported in this process as a ``loopml run`` would.

    Same module name and source as in the child, so the steps' cache keys are the same.
    Re-running in this process spares a Python start-up (~0.5 s of CPU) per kill.
    """
    saved = sys.modules.pop("pipelines", None)
    sys.path.insert(0, str(project))
    try:
        yield importlib.import_module("pipelines")
    finally:
        sys.path.remove(str(project))
        sys.modules.pop("pipelines", None)
        if saved is not None:
            sys.modules["pipelines"] = saved


def _rerun_reuses(project: Path, pipelines: types.ModuleType, seed: int, completed: int) -> int:
    """Re-run ``r06(seed)``: it must reuse exactly the ``completed`` steps; then fsck is clean."""
    client = _client(project)
    try:
        run = pipelines.r06.run({"seed": seed}, client=client)
        assert run.status == "succeeded"
        cached = sum(1 for s in run.steps if s.cached)
    finally:
        client.close()
    assert cached == completed, (seed, completed, cached)
    assert (problems := _fsck(project)) == [], problems
    return cached


def test_r06_kill_dash_nine_mid_step(project: Path) -> None:
    shutil.copy(SCRIPTS / "r06_pipeline.py", project / "pipelines.py")
    rng = random.Random(SEED)
    latencies: list[float] = []
    leftovers = orphans = cache_hits = 0
    rows: list[str] = []
    with _project_pipelines(project) as pipelines:
        for i in range(KILLS):
            after, extra = rng.choice(STEPS), rng.uniform(0.0, EXTRA_S)
            before = _run_ids(project)
            with _Child(project, seed=i, hold=True) as child:
                child.wait_for(after)
                time.sleep(extra)
                killed_at = child.kill()

            new = _run_ids(project) - before
            assert len(new) == 1, new  # a step announced itself, so its run row exists
            run_id = new.pop()
            latency, left = _observe_crash(project, run_id, killed_at)
            latencies.append(latency)
            leftovers += left
            completed, statuses = _completed_steps(project, run_id)
            assert completed < len(STEPS), statuses  # the last step never returns
            orphans += _check_store(project)
            cache_hits += _rerun_reuses(project, pipelines, i, completed)
            rows.append(
                f"  kill {i:>2} {extra * 1000:3.0f} ms after {after!r} began: "
                f"{completed}/5 steps done and reused on re-run; steps {statuses}"
            )

    p50 = statistics.median(latencies)
    worst = max(latencies)
    print(
        f"\nR06: {KILLS} kills, each a random 0-{EXTRA_S * 1000:.0f} ms after a randomly chosen "
        f"step began, all mid-run; crash-detection latency p50 {p50:.3f} s, max {worst:.3f} s "
        f"(lease {LEASE_S:.2f} s); leftover temp files after the next start: {leftovers}; "
        f"orphan blobs (complete) after kills: {orphans}; cache hits on re-runs: {cache_hits}\n"
        + "\n".join(rows)
    )
    assert leftovers == 0


def test_r06_a_crashed_run_has_no_running_steps(project: Path) -> None:
    shutil.copy(SCRIPTS / "r06_pipeline.py", project / "pipelines.py")
    before = _run_ids(project)
    with _Child(project, seed=99, hold=True) as child:
        child.wait_for("features")  # raw has finished; features is running
        killed_at = child.kill()
    (run_id,) = _run_ids(project) - before
    _observe_crash(project, run_id, killed_at)
    _, statuses = _completed_steps(project, run_id)
    assert "running" not in statuses and "pending" not in statuses, statuses
    assert "crashed" in statuses, statuses


# point -> which pass to die at; a run makes ~6 blobs and ~25 write transactions
CRASH_POINTS = {
    "blob-written": (1, 2, 3, 4, 5),
    "blob-published": (1, 2, 3, 4, 5),
    "db-commit": (2, 7, 12, 17, 22),
}


def test_r06_kill_at_the_dangerous_moments(project: Path) -> None:
    """SIGKILL exactly where a crash could corrupt: the same invariants must hold."""
    shutil.copy(SCRIPTS / "r06_pipeline.py", project / "pipelines.py")
    with _Child(project, seed=-1) as child:  # creates the store before the first kill
        assert child.wait() == 0, (project / "child-stderr.txt").read_text()
    rows = []
    kills = 0
    with _project_pipelines(project) as pipelines:
        for index, (point, passes) in enumerate(CRASH_POINTS.items()):
            for nth in passes:
                seed = 1000 + 100 * index + nth
                before = _run_ids(project)
                with _Child(project, seed=seed, crash_at=f"{point}:{nth}") as child:
                    code = child.wait()
                killed_at = time.time()
                if code == 0:  # the run passed this point fewer than nth times
                    rows.append(f"  {point}:{nth}: not reached, run finished")
                    continue
                assert code == -signal.SIGKILL, (project / "child-stderr.txt").read_text()
                kills += 1
                new = _run_ids(project) - before
                completed = 0
                if new:
                    run_id = new.pop()
                    _, left = _observe_crash(project, run_id, killed_at)
                    assert left == 0
                    completed, _ = _completed_steps(project, run_id)
                _check_store(project)
                _rerun_reuses(project, pipelines, seed, completed)
                rows.append(
                    f"  {point}:{nth}: killed, {completed}/5 steps done, re-run reused {completed}"
                )
    print(f"\nR06 crash points: {kills} kills at test-only hook points\n" + "\n".join(rows))
    assert kills >= 10
