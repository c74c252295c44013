"""Lease child: a pipeline whose one step holds the GIL far longer than the run's lease.

Usage: ``python lease_gil_step.py STARTED STOP`` with the project as working directory.
The step writes the run id to STARTED (atomically), then runs a catastrophically
backtracking regular expression, over and over on a longer subject each time (each match
is about 1.6 times longer than the last and holds the GIL throughout: ``re`` never
releases it), until the file STOP exists. So a match outlasts the lease whatever the
machine's speed, and the parent decides how long, from what it sees in the store. The
process exits 0 only if the run ended ``succeeded``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import loopml
from loopml import pipeline, step

STARTED, STOP = Path(sys.argv[1]), Path(sys.argv[2])
PATHOLOGICAL = re.compile(r"(a|aa)+$")  # Fibonacci-many ways to fail on "aaa…a!"


@step(cache=False)
def hold_the_gil() -> int:
    run = loopml.active_run()
    assert run is not None
    part = STARTED.with_suffix(".part")
    part.write_text(run.id)
    os.replace(part, STARTED)
    length = 20
    while not STOP.exists():
        assert PATHOLOGICAL.match("a" * length + "!") is None
        length += 1
    return length


@pipeline
def gil() -> None:
    hold_the_gil()


sys.exit(0 if gil().status == "succeeded" else 1)
