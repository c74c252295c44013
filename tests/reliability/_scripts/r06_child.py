"""R06 child: run the project's ``r06`` pipeline once; the parent SIGKILLs it mid-step.

Usage: ``python r06_child.py SEED READY_FILE`` with the project as working directory.
READY_FILE is created (atomically) right before the pipeline starts its run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, os.getcwd())

from loopml.tracking.client import default_client  # noqa: E402
from pipelines import r06  # noqa: E402  (the project's own module)

seed, ready = int(sys.argv[1]), Path(sys.argv[2])
client = default_client().open()
part = ready.with_suffix(".part")
part.write_text(str(os.getpid()))
os.replace(part, ready)
r06.run({"seed": seed}, client=client)
