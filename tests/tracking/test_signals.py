"""Ctrl-C and SIGTERM reach the main thread: every thread loopml starts blocks them.

Otherwise the kernel may deliver the signal to a background thread, and a main thread
blocked in ``time.sleep`` would not see it until the sleep ends (found by R07 under load).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import os, threading, loopml
from loopml import pipeline, step

@step
def one() -> int:
    return 1

@pipeline
def p():
    return one()

with loopml.start_run("signals"):
    p()  # starts the executor, memory sampler, heartbeat and environment threads
    main = threading.main_thread().native_id
    for tid in sorted(os.listdir("/proc/self/task")):
        if int(tid) == main:
            continue
        status = open(f"/proc/self/task/{tid}/status").read()
        blocked = int(next(l.split()[1] for l in status.splitlines() if l.startswith("SigBlk")), 16)
        print(tid, bool(blocked & (1 << 1)), bool(blocked & (1 << 14)))  # SIGINT=2, SIGTERM=15
"""


def test_background_threads_leave_sigint_and_sigterm_to_the_main_thread(project: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    assert len(rows) >= 2  # at least the heartbeat and the memory sampler
    assert all(sigint == "True" and sigterm == "True" for _, sigint, sigterm in rows), rows
