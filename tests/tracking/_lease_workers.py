"""Process target for ``test_leases.py``: a worker of a distributed job logging into one run.

Workers are started with the ``spawn`` method (a fresh interpreter, as a cluster launcher
would give), so this target lives in its own small importable module. They inherit the
test's working directory and environment (``LOOPML_STORE_URI``), so
``loopml.start_run(run_id=…)`` finds the same store as the run's owner.
"""

from __future__ import annotations


def expected_value(worker: int, step: int) -> float:
    """What ``worker`` logs at ``step`` (exact in binary floating point)."""
    return worker * 10_000.0 + step + 0.5


def log_into(run_id: str, worker: int, points: int) -> str:
    """Attach to ``run_id``, log ``points`` metric points, params, a tag and an artifact.

    Returns the artifact's digest.
    """
    import loopml

    with loopml.start_run(run_id=run_id) as run:
        run.log_params({f"w{worker}.rank": worker, f"w{worker}.lr": 0.125 * worker})
        run.set_tag(f"w{worker}.host", f"node-{worker}")
        for step in range(points):
            run.log_metric(f"w{worker}.loss", expected_value(worker, step), step=step)
        return run.log_artifact({"worker": worker, "weights": [worker] * 8}, f"w{worker}.weights")
