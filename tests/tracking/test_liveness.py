"""A long-lived process (a notebook) sees a killed run as crashed on its next read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from loopml.tracking.client import Client

HOLDER = """
import sys, time, loopml
run = loopml.start_run("victim")
print(run.id, flush=True)
time.sleep(60)
"""


def test_an_open_client_sees_a_killed_run_as_crashed_after_the_lease(project: Path) -> None:
    client = Client().open()  # opened before the run exists, as in a notebook session
    env = {**os.environ, "LOOPML_HEARTBEAT_SECONDS": "0.2"}
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER], cwd=project, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        run_id = child.stdout.readline().strip()  # type: ignore[union-attr]
        assert client.get_run(run_id).status == "running"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        time.sleep(0.2 * 2.5 + 0.3)
        [found] = client.search_runs("pipeline = 'victim'")
        assert found.status == "crashed"
        assert client.get_run(run_id).status == "crashed"
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
