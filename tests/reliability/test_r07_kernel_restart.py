"""R07, last row: a notebook kernel restarted (killed) mid-run leaves the run ``crashed``.

A real ipykernel runs a cell that starts a run and keeps working; the kernel is then
restarted the way Jupyter's "Restart kernel" does it (the process is killed and a new
one started). The dead kernel never ends its run, so its lease expires and the next
reader sees ``crashed``; the new kernel's first run works normally.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from loopml.tracking.client import Client

HEARTBEAT_S = 0.3


@pytest.fixture
def kernel(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KernelManager]:
    name = "loopml-r07"
    spec_dir = tmp_path / "jupyter" / "kernels" / name
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": name, "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("LOOPML_HEARTBEAT_SECONDS", str(HEARTBEAT_S))
    manager = KernelManager(kernel_name=name)
    manager.start_kernel(cwd=str(project), env={**os.environ})
    yield manager
    manager.shutdown_kernel(now=True)


def _run_cell(manager: KernelManager, code: str) -> list[str]:
    """Execute ``code`` in the kernel; returns the lines it printed."""
    printed: list[str] = []

    def on_output(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            printed.extend(msg["content"]["text"].split())

    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(code, timeout=60, output_hook=on_output)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
    return printed


START = 'import loopml\nrun = loopml.start_run("notebook")\nrun.log_metric("progress", 1.0)\n'


def test_r07_restarted_kernel_leaves_its_run_crashed(kernel: KernelManager, project: Path) -> None:
    [run_id] = _run_cell(kernel, START + "print(run.id)")
    assert Client().open().get_run(run_id).status == "running"

    kernel.restart_kernel(now=True)  # what the notebook's "Restart kernel" button does
    time.sleep(HEARTBEAT_S * 2.5 + 0.5)
    assert Client().open().get_run(run_id).status == "crashed"

    [new_id] = _run_cell(kernel, START + "run.end()\nprint(run.id)")
    assert Client().open().get_run(new_id).status == "succeeded"
