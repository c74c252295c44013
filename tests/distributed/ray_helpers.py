"""Helpers of the Ray tests: the real ``loopml`` command, ending this process's Ray connection,
and waiting on events with a deadline."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil


def disconnect_ray() -> None:
    """End this process's Ray Client connection (if any) so the cluster can stop cleanly."""
    if "ray" not in sys.modules:
        return
    import ray

    if ray.is_initialized():
        ray.shutdown()
    from loopml.execution import ray_executor

    ray_executor._connected = None


def run_loopml(
    *args: str, cwd: Path | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """The real ``loopml`` console script in a subprocess."""
    exe = Path(sys.executable).parent / "loopml"
    env = dict(os.environ)
    for var in ("COLUMNS", "LOOPML_STORE_URI", "LOOPML_ARTIFACTS_URI", "RAY_ADDRESS"):
        env.pop(var, None)
    env["COLUMNS"] = "250"  # wide enough that no table cell is clipped
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(check: Callable[[], Any], what: str, deadline_s: float = 120.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > end:
            raise AssertionError(f"waited {deadline_s:g} s for {what}")
        time.sleep(0.05)


def wait_gone(pid: int, deadline_s: float = 60.0) -> None:
    """Until process ``pid`` has exited (a zombie counts as gone)."""

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, f"process {pid} to exit", deadline_s)
