"""Ctrl-C and SIGTERM reach the main thread: every thread loopml starts blocks them.

Otherwise the kernel may deliver the signal to a background thread, and a main thread
blocked in ``time.sleep`` would not see it until the sleep ends (found by R07 under load).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# The check runs in a helper thread while the step is held on an Event, so the step's
# executor thread, the heartbeat and the memory sampler are certainly alive while their
# /proc entries are read. A thread that ends on its own meanwhile (the environment
# capture) can no longer take a signal: it is reported as gone, not read.
CHILD = """
import os, threading, loopml
from loopml import pipeline, step

inside, checked = threading.Event(), threading.Event()

@step
def one() -> int:
    inside.set()
    assert checked.wait(120), "the check never finished"
    return 1

@pipeline
def p():
    return one()

def check():
    try:
        assert inside.wait(120), "the step never started"
        skip = {threading.main_thread().native_id, threading.get_native_id()}
        names = {t.native_id: t.name for t in threading.enumerate()}
        for tid in sorted(int(t) for t in os.listdir("/proc/self/task")):
            if tid in skip:
                continue
            name = names.get(tid, "native")
            try:
                status = open(f"/proc/self/task/{tid}/status").read()
            except FileNotFoundError:
                print(name, "gone", "gone")
                continue
            blocked = int(next(l.split()[1] for l in status.splitlines() if l.startswith("SigBlk")), 16)
            print(name, bool(blocked & (1 << 1)), bool(blocked & (1 << 14)))  # SIGINT=2, SIGTERM=15
    finally:
        checked.set()

checker = threading.Thread(target=check, name="checker")
checker.start()
with loopml.start_run("signals"):
    p()  # starts the executor, memory sampler, heartbeat and environment threads
checker.join()
"""


def test_background_threads_leave_sigint_and_sigterm_to_the_main_thread(project: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    live = [row for row in rows if row[1:] != ["gone", "gone"]]
    held = {"loopml-step-0", "loopml-heartbeat", "loopml-memory"}  # alive during the check
    assert held <= {name for name, *_ in live}, rows
    assert all(blocked == ["True", "True"] for _, *blocked in live), rows
