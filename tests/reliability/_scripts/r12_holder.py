"""R12 child: hold a live run (heartbeating) for SECONDS, then end it normally.

Usage: ``python r12_holder.py READY_FILE SECONDS`` with the project as working directory.
The run id is written to READY_FILE (atomically) once the run is live.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import loopml

ready, seconds = Path(sys.argv[1]), float(sys.argv[2])
run = loopml.start_run("holder")
part = ready.with_suffix(".part")
part.write_text(run.id)
os.replace(part, ready)
time.sleep(seconds)
run.end()
