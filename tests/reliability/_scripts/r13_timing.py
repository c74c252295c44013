"""R13 timing in a fresh process (so no per-process verification memo is warm).

Usage (project as working directory, store from the environment as usual):
``python r13_timing.py fsck`` prints ``{"seconds": …, "problems": N}`` for one fsck pass;
``python r13_timing.py read DIGEST`` prints raw-read and verified-read seconds of one blob.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from loopml.tracking.client import Client
from loopml.tracking.fsck import fsck

client = Client().open()
if sys.argv[1] == "fsck":
    started = time.perf_counter()
    problems, _ = fsck(client)
    print(json.dumps({"seconds": time.perf_counter() - started, "problems": len(problems)}))
else:
    digest = sys.argv[2]
    path = Path(client.artifacts.blob_path(digest))
    started = time.perf_counter()
    raw = path.read_bytes()
    raw_s = time.perf_counter() - started
    started = time.perf_counter()
    verified = client.artifacts.get_bytes(digest)
    verified_s = time.perf_counter() - started
    assert raw == verified
    print(json.dumps({"raw": raw_s, "verified": verified_s, "bytes": len(raw)}))
client.close()
