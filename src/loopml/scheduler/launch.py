"""Starting a pipeline run in a child process: what the scheduler and the REST API share.

The child (``python -m loopml.scheduler.job``) opens the same store, runs the pipeline as an
ordinary run (tracking, cache, cost) with the given tags, and tells the parent the run's id
through a pipe of its own as soon as the run exists, so a pipeline that prints cannot
confuse it. A crash of the pipeline ends the child, never the parent.

- ``timeout_s``: the child stops its own run when the time is up, and the run is recorded
  ``failed`` with "timed out after …" (the parent kills it outright if it does not stop
  within a grace period after that).
- ``die_with_parent``: the child is killed when the parent dies (Linux ``PR_SET_PDEATHSIG``),
  so a scheduler killed with ``kill -9`` leaves no run behind that nobody watches: the run
  stops heartbeating and is marked ``crashed``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.config import Settings

#: Seconds a timed-out child gets to record its run as failed before it is killed.
TIMEOUT_GRACE_S = 30.0


@dataclass
class JobSpec:
    """What a child process runs."""

    pipeline: str
    params: list[str] = field(default_factory=list)  # "KEY=VALUE", typed by the signature
    tags: dict[str, str] = field(default_factory=dict)
    timeout_s: float | None = None
    die_with_parent: bool = True
    no_cache: bool = False

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


class Launched:
    """A child running a pipeline; ``run_id`` arrives once the child has created the run."""

    def __init__(self, proc: subprocess.Popen[bytes], reader: int, log_path: Path | None) -> None:
        self.proc = proc
        self.log_path = log_path
        self.run_id: str | None = None
        self.error: str | None = None
        self._started = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(reader,), daemon=True)
        self._reader.start()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as pipe:
            for line in pipe:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if "run_id" in message:
                    self.run_id = str(message["run_id"])
                elif "error" in message:
                    self.error = str(message["error"])
                self._started.set()
        self._started.set()  # the child ended (or closed the pipe) without a run

    def wait_started(self, timeout: float | None = None) -> str | None:
        """The run's id once it exists; None when the child ended before creating it."""
        self._started.wait(timeout)
        return self.run_id

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL the child's whole process group (its step workers too)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    @property
    def pid(self) -> int:
        return self.proc.pid


def launch(settings: Settings, spec: JobSpec, *, log_path: Path | None = None) -> Launched:
    """Start ``spec`` in a child process on the store of ``settings``."""
    reader, writer = os.pipe()
    env = dict(os.environ)
    env["LOOPML_STORE_URI"] = settings.store_uri
    env["LOOPML_ARTIFACTS_URI"] = settings.artifacts_uri
    env["LOOPML_JOB_FD"] = str(writer)
    env["LOOPML_JOB_PARENT"] = str(os.getpid())
    out: Any = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopml.scheduler.job", spec.to_json()],
            cwd=settings.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if log_path is not None else subprocess.DEVNULL,
            pass_fds=(writer,),
            start_new_session=True,  # its own process group: a timeout kills its workers too
        )
    finally:
        os.close(writer)
        if log_path is not None:
            out.close()
    return Launched(proc, reader, log_path)
