"""Test-only crash points, for the kill -9 reliability test (RELIABILITY.md R06).

With ``LOOPML_CRASH_AT=NAME`` (or ``NAME:N``) set, the process SIGKILLs itself the N-th
time (default: the first) execution passes ``crash_point(NAME)``. Without it, which is
always the case outside tests, a crash point costs one comparison. The points sit where a
crash is most dangerous:

- ``blob-written``: a blob's temp file is complete, not yet renamed under its digest;
- ``blob-published``: the blob is visible under its digest, its row not yet committed;
- ``db-commit``: a write transaction's statements ran, the commit has not happened.
"""

from __future__ import annotations

import os
import signal

_target = os.environ.get("LOOPML_CRASH_AT")
_name, _, _count = (_target or "").partition(":")
_remaining = int(_count or 1)


def crash_point(name: str) -> None:
    """SIGKILL this process here if ``LOOPML_CRASH_AT`` names this point (tests only)."""
    global _remaining
    if _target is None or name != _name:
        return
    _remaining -= 1
    if _remaining == 0:
        os.kill(os.getpid(), signal.SIGKILL)
