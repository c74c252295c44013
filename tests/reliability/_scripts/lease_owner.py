"""Lease child: own a live run, then either end it when told or die without ending it.

Usage: ``python lease_owner.py MODE READY [RELEASE]`` with the project as working directory.
The run (``loopml.start_run("owner")``) is heartbeating when its id is written to READY
(atomically, via rename). Then, by MODE:

- ``wait``: wait for the file RELEASE to appear, end the run normally and exit 0;
- ``exit``: ``os._exit(0)`` at once, leaving the run running in the store.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import loopml

MODE, READY = sys.argv[1], Path(sys.argv[2])
run = loopml.start_run("owner")
part = READY.with_suffix(".part")
part.write_text(run.id)
os.replace(part, READY)
if MODE == "exit":
    os._exit(0)
release = Path(sys.argv[3])
while not release.exists():
    time.sleep(0.01)
run.log_metric("after_release", 1.0)
run.end()
