"""R07 child: end a tracked run in one way, chosen on the command line.

Usage: ``python r07_child.py KIND MODE READY_FILE`` with the project as working directory.
KIND is ``adhoc`` (``with loopml.start_run("t")``) or ``pipeline`` (the ending happens
inside a step of a running pipeline). The run id is written to READY_FILE (atomically,
via rename) just before the ending action, so the parent knows when to signal.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import loopml
from loopml import pipeline, step

KIND, MODE, READY = sys.argv[1], sys.argv[2], Path(sys.argv[3])


def ready(run_id: str) -> None:
    part = READY.with_suffix(".part")
    part.write_text(run_id)
    os.replace(part, READY)


def act() -> None:
    """The ending action, run inside the tracked block or inside a step."""
    if MODE == "exception":
        raise RuntimeError("r07: uncaught exception")
    if MODE == "exit1":
        sys.exit(1)
    if MODE == "exit0":
        sys.exit(0)
    if MODE == "os_exit":
        os._exit(0)
    if MODE in ("sigint", "sigterm", "sigkill"):
        time.sleep(60)  # the parent signals us while we sleep here


@step(cache=False)
def work(mode: str) -> int:
    run = loopml.active_run()
    assert run is not None
    loopml.log_metric("progress", 1.0)
    ready(run.id)
    act()
    return 1


@pipeline
def r07(mode: str = "normal") -> None:
    work(mode)


if KIND == "pipeline":
    r07(MODE)
elif MODE in ("never_ended_ok", "never_ended_raise"):
    r = loopml.start_run("t")
    r.log_metric("progress", 1.0)
    ready(r.id)
    if MODE == "never_ended_raise":
        raise RuntimeError("r07: raised with a run never ended")
else:
    with loopml.start_run("t") as r:
        r.log_metric("progress", 1.0)
        ready(r.id)
        act()
