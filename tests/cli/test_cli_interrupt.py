"""Ctrl-C during ``loopml run`` (issue 12 §1 "Smaller, each reproduced").

It used to print Click's bare "Aborted."; now it says the run was cancelled, exits 130,
and the store records the run as ``cancelled``. The test waits for the step's marker file
(the step has started) before it sends SIGINT, so it holds on a machine of any speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _cli_helpers import ENV, cli_json

from cli_runner import run_cli

WAITING = """
from __future__ import annotations

import time
from pathlib import Path

from loopml import pipeline, step


@step
def wait(marker: str) -> int:
    Path(marker).write_text("started")
    deadline = time.monotonic() + 120  # never hang a test run for ever
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return 1


@pipeline
def slow(marker: str = "started.txt"):
    return wait(marker=marker)
"""


def test_ctrl_c_cancels_the_run_and_says_so(project: Path) -> None:
    (project / "pipelines.py").write_text(WAITING)
    marker = project / "started.txt"
    exe = Path(sys.executable).parent / "loopml"
    proc = subprocess.Popen(
        [str(exe), "run", "slow"],
        cwd=project,
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert "Cancelled (Ctrl-C): the run was marked cancelled." in err
    assert "Aborted" not in err and "Traceback" not in err, err
    [run] = cli_json(project, "runs")
    assert (run["run"], run["status"]) == ("slow#1", "cancelled")
    shown = cli_json(project, "runs", "show", "slow#1")
    assert [(s["name"], s["status"]) for s in shown["steps"]] == [("wait", "cancelled")]
    assert run_cli("runs", cwd=project).stdout.count("cancelled") == 1
