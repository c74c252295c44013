"""Honest leases: live runs are never swept, dead ones are at once, a lost lease is loud.

Issue 12 §1 "Leases are honest", §1b "Live runs marked crashed" and §3 "Logging from several
processes into one run". A running run holds a lease on the database's clock; whoever opens
the store sweeps runs that are dead: at once when their owner process is gone from this
machine (pid *and* start time), by lease expiry when the owner is elsewhere, and never
while the owner is alive on this machine, however long it has been stopped or starved.

Children are the scripts in ``tests/reliability/_scripts/lease_*.py`` (as R07/R12 start
theirs). The tests wait on events: a ready file, a child's exit, or what the store shows.
The one deliberate wait, "past the lease", is measured on the database's clock: until
``now - heartbeat_at`` exceeds three lease lengths.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _lease_workers import expected_value, log_into

import loopml
from loopml._process import machine_id, owner_token, process_start
from loopml.errors import LeaseLostError, LoopmlError
from loopml.store.engine import Tx
from loopml.tracking.client import Client
from loopml.tracking.liveness import Heartbeat
from loopml.tracking.run import Run

SCRIPTS = Path(__file__).parents[1] / "reliability" / "_scripts"
DEADLINE_S = 60.0  # only a guard against a hung test: every wait ends on an event first


# -- helpers ----------------------------------------------------------------------------------


def _env(heartbeat_s: float, store_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HEARTBEAT_SECONDS"] = str(heartbeat_s)
    env["LOOPML_STORE_URI"] = store_url
    return env


def _child(
    script: str, *args: Path | str, project: Path, heartbeat_s: float, store_url: str
) -> subprocess.Popen[bytes]:
    err = (project / f"{script}.stderr").open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, str(SCRIPTS / script), *map(str, args)],
            cwd=project,
            env=_env(heartbeat_s, store_url),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    finally:
        err.close()


def _stderr(project: Path, script: str) -> str:
    return (project / f"{script}.stderr").read_text(errors="replace")


def _wait_until(what: str, done: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert proc.poll() is None, f"child exited with {proc.returncode} before {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def _read_id(path: Path, proc: subprocess.Popen[bytes]) -> str:
    _wait_until(f"{path.name} was written", path.exists, proc)
    return path.read_text()


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
    proc.wait()


@pytest.fixture
def observer(store_url: str) -> Iterator[Client]:
    """A client of the test's own that reads the store without sweeping it."""
    client = Client(store_uri=store_url)
    client.metadata.open()
    yield client
    client.close()


def _end_live(client: Client) -> None:
    """End what a failed test left live, so that nothing is left to end at exit."""
    for run in client.heartbeat.live_runs():
        with contextlib.suppress(LoopmlError):
            run.end("failed", error="The test failed.")


def _close(client: Client) -> None:
    _end_live(client)
    client.close()


def _heartbeat_age(client: Client, run_id: str) -> float:
    """Seconds since the run's last heartbeat, on the database's clock."""
    return float(
        client.metadata.db.read(
            lambda tx: tx.scalar(
                f"SELECT {tx.now} - heartbeat_at FROM runs WHERE id = ?", (run_id,)
            )
        )
    )


def _sweep_from_another_client(store_url: str, run_id: str) -> tuple[int, str]:
    """Sweep as a newly started ``loopml`` process does when it opens the store.

    Returns how many runs that sweep marked crashed, and the status of ``run_id`` after it.
    """
    client = Client(store_uri=store_url)
    try:
        client.metadata.open()
        return client.sweep(), client.metadata.runs.get(run_id).status
    finally:
        client.close()


def _plant(client: Client, *, owner: str, lease_s: float, heartbeat_age_s: float = 0.0) -> str:
    """A running run owned by ``owner`` whose last heartbeat was ``heartbeat_age_s`` ago."""
    record, _ = client.metadata.runs.create(
        pipeline="planted", host="elsewhere", pid=1, executor="local", owner=owner, lease_s=lease_s
    )
    client.metadata.db.write(
        lambda tx: tx.execute(
            f"UPDATE runs SET heartbeat_at = {tx.now} - ? WHERE id = ?",
            (heartbeat_age_s, record.id),
        )
    )
    return record.id


def _mark_crashed(client: Client, run_id: str) -> None:
    """Sweep ``run_id`` behind its owner's back, as another process would."""

    def sweep(tx: Tx) -> None:
        tx.execute(
            f"UPDATE runs SET status = 'crashed', ended_at = {tx.now}, "
            "error = 'Swept by the test.' WHERE id = ?",
            (run_id,),
        )

    client.metadata.db.write(sweep)


def _owner_client(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Client:
    """A client whose runs have a 150 s lease: its heartbeat thread leaves them alone.

    The test renews the lease itself (``run.beat()``), so nothing renews a lease or notices
    its loss behind the test's back.
    """
    monkeypatch.setenv("LOOPML_HEARTBEAT_SECONDS", "60")
    return Client(store_uri=store_url).open()


def _unserved_run(client: Client, pipeline: str) -> Run:
    """A live run of this process that no heartbeat thread serves (as if it were starved).

    Nothing flushes its buffer but the test, so what a flush or the end refuses is exact.
    """
    new, token = client.metadata.runs.create(
        pipeline=pipeline,
        host=socket.gethostname(),
        pid=os.getpid(),
        owner=owner_token(),
        executor="local",
        lease_s=150,
    )
    return Run(client, new.id, token=token)


# -- 1. the database's clock, not the sweeper's -----------------------------------------------


def test_a_host_whose_clock_is_60s_ahead_sweeps_only_leases_expired_on_the_database_clock(
    store_url: str, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lease 10 s: the skew is six leases, and a loaded machine cannot starve the heartbeat
    # thread that long (the skewed host, being "elsewhere", would then sweep it rightly).
    monkeypatch.setenv("LOOPML_HEARTBEAT_SECONDS", "4")
    owner = Client(store_uri=store_url).open()
    try:
        live = owner.start_run("live")
        old = _plant(owner, owner="0123456789abcdef:4242:99", lease_s=5.0, heartbeat_age_s=30.0)
        seen = subprocess.run(
            [sys.executable, str(SCRIPTS / "lease_skewed_host.py"), store_url, "60"],
            cwd=project,
            env=_env(4, store_url),
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
        )
        assert seen.returncode == 0, seen.stderr
        report = json.loads(seen.stdout.splitlines()[-1])
        assert report["clock_ahead_s"] == pytest.approx(60, abs=10)  # the skew took effect
        assert report["statuses"][live.id] == "running"
        assert report["statuses"][old] == "crashed"  # its heartbeat is 30 s old on the DB clock
        assert report["swept"] == 1
        live.log_metric("after_the_sweep", 1.0)
        live.end()
        record = owner.run_record(live.id)
        assert record.status == "succeeded"
        assert record.metrics == {"after_the_sweep": 1.0}
    finally:
        _close(owner)


# -- 2. an owner alive on this machine is never swept -----------------------------------------


def test_an_owner_stopped_far_past_its_lease_is_not_swept_and_ends_its_run(
    store_url: str, project: Path, observer: Client
) -> None:
    ready, release = project / "ready", project / "release"
    proc = _child(
        "lease_owner.py",
        "wait",
        ready,
        release,
        project=project,
        heartbeat_s=0.2,
        store_url=store_url,
    )
    try:
        run_id = _read_id(ready, proc)
        lease = observer.metadata.runs.get(run_id).lease_s
        assert lease == pytest.approx(0.5)
        proc.send_signal(signal.SIGSTOP)
        _wait_until(
            "the lease lapsed three times over",
            lambda: _heartbeat_age(observer, run_id) > 3 * lease,
            proc,
        )
        swept, status = _sweep_from_another_client(store_url, run_id)
        assert (swept, status) == (0, "running")
        proc.send_signal(signal.SIGCONT)
        release.touch()
        assert proc.wait(timeout=DEADLINE_S) == 0, _stderr(project, "lease_owner.py")
    finally:
        _end(proc)
    record = observer.metadata.runs.get(run_id)
    assert record.status == "succeeded"
    assert record.metrics == {"after_release": 1.0}  # its writes after the stop were kept


# The sweep's decision is the same on PostgreSQL (the stopped-owner test runs there too).
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_step_holding_the_gil_far_past_its_lease_is_not_swept(
    store_url: str, project: Path, observer: Client
) -> None:
    started, stop = project / "started", project / "stop"
    proc = _child(
        "lease_gil_step.py", started, stop, project=project, heartbeat_s=0.2, store_url=store_url
    )
    try:
        run_id = _read_id(started, proc)
        lease = observer.metadata.runs.get(run_id).lease_s
        # Each match is longer than the last: wait until one has starved the heartbeat
        # thread for three leases, sweep, and check that the match still held the GIL
        # afterwards (no heartbeat came in), so the sweep happened inside it.
        while True:
            _wait_until(
                "a regex match starved the heartbeat for three leases",
                lambda: _heartbeat_age(observer, run_id) > 3 * lease,
                proc,
            )
            swept, status = _sweep_from_another_client(store_url, run_id)
            assert (swept, status) == (0, "running")
            if _heartbeat_age(observer, run_id) > 3 * lease:
                break
        stop.touch()
        assert proc.wait(timeout=DEADLINE_S) == 0, _stderr(project, "lease_gil_step.py")
    finally:
        _end(proc)
    assert observer.metadata.runs.get(run_id).status == "succeeded"
    [step] = observer.metadata.steps.for_run(run_id)
    assert (step.name, step.status) == ("hold_the_gil", "succeeded")


# -- 3. a dead owner is swept at once ---------------------------------------------------------


def test_an_owner_that_died_on_this_machine_is_swept_at_once_not_after_its_lease(
    store_url: str, project: Path, observer: Client
) -> None:
    ready = project / "ready"
    proc = _child(
        "lease_owner.py", "exit", ready, project=project, heartbeat_s=60, store_url=store_url
    )
    try:
        assert proc.wait(timeout=DEADLINE_S) == 0, _stderr(project, "lease_owner.py")
    finally:
        _end(proc)
    run_id = ready.read_text()
    record = observer.metadata.runs.get(run_id)
    assert record.status == "running"  # nobody has looked yet
    assert record.lease_s - _heartbeat_age(observer, run_id) > 60  # its lease runs for minutes
    swept, status = _sweep_from_another_client(store_url, run_id)
    assert (swept, status) == (1, "crashed")
    assert "process exited" in (observer.metadata.runs.get(run_id).error or "")


def test_a_reused_pid_does_not_keep_a_dead_owners_run_alive(client: Client, store_url: str) -> None:
    unrelated = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        start = process_start(unrelated.pid)
        assert start is not None and start.isdigit()
        # The run's owner had this pid but started earlier: the pid now names another process.
        reused = _plant(
            client, owner=f"{machine_id()}:{unrelated.pid}:{int(start) - 1}", lease_s=600
        )
        # The same pid with its real start time is that process, alive: never swept.
        alive = _plant(
            client,
            owner=f"{machine_id()}:{unrelated.pid}:{start}",
            lease_s=0.5,
            heartbeat_age_s=60,
        )
        assert _sweep_from_another_client(store_url, reused) == (1, "crashed")
        assert client.metadata.runs.get(alive).status == "running"
    finally:
        unrelated.stdin.close()  # type: ignore[union-attr]
        unrelated.wait()


# -- 4. a lost lease is loud ------------------------------------------------------------------


def test_a_lost_lease_warns_at_once_then_refuses_writes_and_the_end(
    store_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="loopml")
    client = _owner_client(store_url, monkeypatch)
    try:
        run = client.start_run("victim")
        run.log_metric("before", 1.0)
        run.flush()
        _mark_crashed(client, run.id)
        run.beat()
        # Whichever renewal saw the loss first (this one, or the heartbeat thread's) warned.
        deadline = time.monotonic() + DEADLINE_S
        while not [r for r in caplog.records if r.name == "loopml"]:
            assert time.monotonic() < deadline, "no warning was logged"
            time.sleep(0.005)
        [warning] = [r for r in caplog.records if r.name == "loopml"]
        assert warning.levelno == logging.WARNING
        assert "Run victim#1 lost its lease" in warning.getMessage()
        assert "marked it crashed (Swept by the test.)" in warning.getMessage()
        with pytest.raises(LeaseLostError, match="lost its lease"):
            run.log_metric("after", 2.0)
        with pytest.raises(LeaseLostError, match="ended as crashed, not succeeded"):
            run.end()
        record = client.run_record(run.id)
        assert record.status == "crashed"
        assert record.error is not None and record.error.startswith("Swept by the test.")
        assert "tried to end the run as succeeded" in record.error
        assert record.metrics == {"before": 1.0}
    finally:
        _close(client)


def test_leaving_start_run_after_a_sweep_raises_and_the_run_stays_crashed(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _owner_client(store_url, monkeypatch)
    try:
        with (
            pytest.raises(LeaseLostError, match="ended as crashed, not succeeded"),
            client.start_run("victim") as run,
        ):
            _mark_crashed(client, run.id)
        record = client.run_record(run.id)
        assert record.status == "crashed"
        assert "tried to end the run as succeeded" in (record.error or "")
    finally:
        _close(client)


def test_points_a_swept_run_refuses_are_counted_in_the_error(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _owner_client(store_url, monkeypatch)
    try:
        run = _unserved_run(client, "victim")
        _mark_crashed(client, run.id)
        for step in range(7):
            run.log_metric("loss", float(step))
        with pytest.raises(LeaseLostError, match=r"7 metric points were not stored"):
            run.flush()
        for step in range(3):
            run.log_metric("loss", float(step))
        with pytest.raises(LeaseLostError, match=r"ended as crashed.*The last 3 metric points"):
            run.end()
        assert client.metric_history(run.id, "loss") == []
        assert "3 metric points were not stored" in (client.run_record(run.id).error or "")
    finally:
        _close(client)


PIPELINES = """
import os
import time
from pathlib import Path

import loopml
from loopml import pipeline, step


@step(cache=False)
def wait_for_go() -> int:
    run = loopml.active_run()
    Path("started.part").write_text(run.id)
    os.replace("started.part", "started")
    while not Path("go").exists():
        time.sleep(0.01)
    return 1


@pipeline
def slow() -> None:
    wait_for_go()
"""


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # the CLI is the same on both
def test_loopml_run_exits_1_when_its_run_was_swept_while_it_worked(
    store_url: str, project: Path, observer: Client
) -> None:
    (project / "pipelines.py").write_text(PIPELINES)
    out, err = project / "run.stdout", project / "run.stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "loopml"), "run", "slow"],
            cwd=project,
            env=_env(0.2, store_url),
            stdout=stdout,
            stderr=stderr,
        )
    try:
        run_id = _read_id(project / "started", proc)
        _mark_crashed(observer, run_id)
        # The warning comes at the next heartbeat, while the step still works.
        _wait_until("the lost-lease warning", lambda: "lost its lease" in err.read_text(), proc)
        (project / "go").touch()
        assert proc.wait(timeout=DEADLINE_S) == 1, err.read_text()
    finally:
        _end(proc)
    printed = err.read_text()
    assert "Error: Run slow#1 ended as crashed, not " in printed
    assert "Traceback" not in printed
    assert "succeeded" not in printed + out.read_text()
    record = observer.metadata.runs.get(run_id)
    assert record.status == "crashed"
    assert "tried to end the run as" in (record.error or "")


# -- 5. leases are renewed before buffered writes are flushed ---------------------------------


class _RecordingRun:
    """A fake live run: the two methods the heartbeat thread calls, recording their order."""

    def __init__(self, run_id: str, calls: list[str], done: Callable[[], None]) -> None:
        self.id = run_id
        self.heartbeat_seconds = 60.0
        # Started long ago: its lease is due for renewal on the heartbeat's first tick, when
        # a flush is due too.
        self.started_monotonic = time.monotonic() - 3600
        self._calls = calls
        self._done = done

    def beat(self) -> None:
        self._calls.append(f"beat {self.id}")

    def flush(self, *, background: bool = False) -> None:
        self._calls.append(f"flush {self.id}")
        self._done()


def test_the_heartbeat_renews_the_lease_before_it_flushes() -> None:
    calls: list[str] = []
    flushed = threading.Event()
    heartbeat = Heartbeat()
    run = _RecordingRun("a", calls, flushed.set)
    heartbeat.register(run)  # type: ignore[arg-type]
    try:
        assert flushed.wait(DEADLINE_S)
    finally:
        heartbeat.unregister(run)  # type: ignore[arg-type]
    # Both were due on the first tick: the lease came first, so a slow flush cannot let it lapse.
    assert calls[:2] == ["beat a", "flush a"]


# -- 6. several processes log into one run ----------------------------------------------------

WORKERS = 4
POINTS = 2_000


def test_four_processes_log_into_one_run_and_nothing_is_lost(client: Client) -> None:
    """The run's owner is this process; four spawned workers attach and log into it."""
    try:
        owner = loopml.start_run("ddp")
        late = client.start_run(run_id=owner.id)  # attached now, written to after the run ended
        with mp.get_context("spawn").Pool(WORKERS) as pool:
            digests = pool.starmap(log_into, [(owner.id, w, POINTS) for w in range(WORKERS)])
        owner.end()

        record = client.run_record(owner.id)
        assert record.status == "succeeded"
        assert record.params == {
            key: value
            for w in range(WORKERS)
            for key, value in ((f"w{w}.rank", str(w)), (f"w{w}.lr", str(0.125 * w)))
        }
        assert record.tags == {f"w{w}.host": f"node-{w}" for w in range(WORKERS)}
        histories = client.metric_histories(owner.id, [f"w{w}.loss" for w in range(WORKERS)])
        for w in range(WORKERS):
            points = histories[f"w{w}.loss"]
            assert [p.step for p in points] == list(range(POINTS))
            assert [p.value for p in points] == [expected_value(w, s) for s in range(POINTS)]
        logged = {
            link.name: link.digest
            for link in client.links(run=owner.id)
            if link.direction == "logged" and link.name.endswith(".weights")
        }
        assert logged == {f"w{w}.weights": digests[w] for w in range(WORKERS)}
        assert client.load_artifact(logged["w3.weights"]) == {"worker": 3, "weights": [3] * 8}

        with pytest.raises(
            LeaseLostError, match="is succeeded; only a running run can be attached"
        ):
            loopml.start_run(run_id=owner.id)
        for step in range(5):
            late.log_metric("late", float(step))
        with pytest.raises(LeaseLostError, match=r"succeeded, not running.*5 metric points"):
            late.flush()
        assert "late" not in client.run_record(owner.id).metrics
    finally:
        _end_live(client)
