"""The child process of :func:`loopml.scheduler.launch.launch`: run one pipeline, then exit.

Exit status: 0 when the run succeeded, 1 when it failed (or timed out), 2 when it could not
start (unknown pipeline, bad parameters: the message goes to the parent's pipe and the log).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
from typing import Any


class RunTimedOut(Exception):
    """The schedule's (or request's) timeout ran out before the run finished."""


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the line above: follow it now
        os._exit(1)


def _arm_timeout(seconds: float) -> None:
    """Raise :class:`RunTimedOut` in the main thread after ``seconds``."""

    def expired(signum: int, frame: Any) -> None:
        raise RunTimedOut(f"Timed out after {seconds:g} s (the schedule's --timeout).")

    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    fd = int(os.environ.pop("LOOPML_JOB_FD", "-1"))
    parent = int(os.environ.pop("LOOPML_JOB_PARENT", "0"))
    pipe = os.fdopen(fd, "w", buffering=1) if fd >= 0 else None
    lock = threading.Lock()

    def tell(message: dict[str, str]) -> None:
        if pipe is None:
            return
        with lock:
            try:
                pipe.write(json.dumps(message) + "\n")
                pipe.flush()
            except OSError:
                pass

    if spec.get("die_with_parent") and parent:
        _die_with_parent(parent)
    from loopml.config import load_settings
    from loopml.errors import LoopmlError
    from loopml.pipelines.discovery import find_pipeline

    try:
        settings = load_settings()
        target = find_pipeline(settings, spec["pipeline"])
        values = target.parse_params(list(spec.get("params", [])))
        bound = target.bind(**values)
        dag = target.dag(**bound)
    except LoopmlError as exc:
        tell({"error": str(exc)})
        print(f"loopml: {exc}", file=sys.stderr)
        return 2
    from loopml.execution.runner import run_pipeline
    from loopml.tracking.client import Client

    client = Client(settings).open()
    if spec.get("timeout_s"):
        _arm_timeout(float(spec["timeout_s"]))
    try:
        run_pipeline(
            target,
            dag,
            bound,
            cache=not spec.get("no_cache", False),
            client=client,
            tags=spec.get("tags") or {},
            on_start=lambda run: tell({"run_id": run.id}),
        )
    except (Exception, KeyboardInterrupt) as exc:
        print(f"loopml: the run ended early: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if pipe is not None:
            pipe.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
