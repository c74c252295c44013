"""Prediction ids: unique across processes and restarts, cheap enough for every row.

An id is a random prefix drawn once per process (12 hex digits, 48 bits) and a counter,
``3f9c0a1b2c4d-1f``. Drawing 16 random bytes per row (a UUID) would cost more than the
rest of a one-row request's bookkeeping; two processes share a prefix with probability
about n²/2⁴⁹ for n processes.
"""

from __future__ import annotations

import itertools
import os

_prefix = ""
_counter = itertools.count(1)
_pid = -1


def new_ids(n: int) -> list[str]:
    """``n`` fresh ids, matching ``loopml.store.predictions.PREDICTION_ID``."""
    global _prefix, _counter, _pid
    if os.getpid() != _pid:  # a forked child must not repeat its parent's ids
        _pid, _prefix, _counter = os.getpid(), os.urandom(6).hex(), itertools.count(1)
    p, c = _prefix, _counter
    return [f"{p}-{next(c):x}" for _ in range(n)]
