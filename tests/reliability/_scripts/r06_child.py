"""R06 child: run the project's ``r06`` pipeline once; the parent SIGKILLs it mid-step.

Usage: ``python r06_child.py SEED`` with the project as working directory. With
``R06_EVENTS_FD`` set, the child announces ``ready`` on that pipe once its client is open,
right before the run starts; each step then announces itself (see ``r06_pipeline.py``).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.getcwd())

from loopml.tracking.client import default_client  # noqa: E402
from pipelines import announce, r06  # noqa: E402  (the project's own module)

seed = int(sys.argv[1])
client = default_client().open()
announce("ready")
r06.run({"seed": seed}, client=client)
