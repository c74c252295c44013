"""Process targets for R14 (gc under concurrency): blob writers and an in-flight run.

Like ``_store_workers``, workers come from a ``forkserver`` with loopml imported, inherit
the server's working directory and environment (not the test's), and are told their
project and store explicitly. Each reports one dict on the result queue and never
raises: an exception becomes ``{"error": traceback}``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import traceback
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

PRELOAD = ["loopml.store", "loopml.tracking.client", "loopml.tracking.run", "_gc_workers"]


def context() -> BaseContext:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # no effect once the server runs; harmless
    return ctx


def _client(root: str, url: str, artifacts: str) -> Any:
    os.chdir(root)
    os.environ["LOOPML_HEARTBEAT_SECONDS"] = "0.5"
    from loopml.config import load_settings
    from loopml.tracking.client import Client

    return Client(load_settings(Path(root)), store_uri=url, artifacts_uri=artifacts).open()


def writer(
    root: str, url: str, artifacts: str, index: int, started: Any, stop: Any, results: Any
) -> None:
    """Store fresh blobs (``store_value``) until told to stop; report their digests."""
    out: dict[str, Any] = {"role": "writer", "index": index, "digests": []}
    try:
        client = _client(root, url, artifacts)
        rng = random.Random(index)
        while not stop.is_set():
            value = f"writer {index} blob {len(out['digests'])} ".encode() + rng.randbytes(
                rng.randint(1_000, 8_000)
            )
            out["digests"].append(client.store_value(value).digest)
            with started.get_lock():
                started.value += 1
        client.close()
    except BaseException:
        out["error"] = traceback.format_exc()
    results.put(out)


def inflight(
    root: str,
    url: str,
    artifacts: str,
    old: list[bytes],
    logged: Any,
    stop: Any,
    results: Any,
) -> None:
    """A live run that logs the content of old, unreferenced blobs again, over and over.

    It keeps going (in a new random order each pass) until told to stop and it has logged
    every old content at least once, so its new references land before, during and after
    gc's deletions.
    """
    out: dict[str, Any] = {"role": "inflight", "links": 0}
    try:
        client = _client(root, url, artifacts)
        rng = random.Random(7)
        with client.start_run("inflight") as run:
            out["run_id"] = run.id
            passes = 0
            while passes == 0 or not stop.is_set():
                order = list(range(len(old)))
                rng.shuffle(order)
                for i in order:
                    run.log_artifact(old[i], f"old{i}")
                    out["links"] += 1
                    with logged.get_lock():
                        logged.value += 1
                passes += 1
            out["passes"] = passes
        out["status"] = str(client.run_record(out["run_id"]).status)
        client.close()
    except BaseException:
        out["error"] = traceback.format_exc()
    results.put(out)
