"""Progress of long blob writes, reported to whoever asked for it (a CLI progress bar).

``with reporting(callback, total):`` makes the copy and the hashing of a stored file call
``callback(done, total)`` as bytes go by. It is a context variable, not a module global:
each thread or task of a long-lived server reports only to its own caller, and code
outside such a block pays one lookup per megabyte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class _Tracker:
    __slots__ = ("callback", "done", "total")

    def __init__(self, callback: Callable[[int, int], None], total: int) -> None:
        self.callback, self.done, self.total = callback, 0, total

    def advance(self, nbytes: int) -> None:
        self.done = min(self.done + nbytes, self.total)
        self.callback(self.done, self.total)


_tracker: ContextVar[_Tracker | None] = ContextVar("loopml_progress", default=None)


@contextmanager
def reporting(callback: Callable[[int, int], None] | None, total: int) -> Iterator[None]:
    """Report bytes copied and hashed inside the block, out of ``total``; None: no-op."""
    if callback is None:
        yield
        return
    token = _tracker.set(_Tracker(callback, total))
    try:
        yield
    finally:
        _tracker.reset(token)


def active() -> bool:
    return _tracker.get() is not None


def advance(nbytes: int) -> None:
    """Count ``nbytes`` more as done (nothing happens outside a ``reporting`` block)."""
    tracker = _tracker.get()
    if tracker is not None:
        tracker.advance(nbytes)
