"""One executor shared by every trial of a sweep, seen by each trial through a thin wrapper.

The wrapper's futures mirror the shared executor's, but the sweep can fail them with
``KeyboardInterrupt`` on Ctrl-C. The trial's runner (on a thread that never receives the
signal itself) then ends its run exactly as Ctrl-C ends a single run: ``cancelled``, with
its unfinished steps cancelled too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any


class Linked(Future[Any]):
    """A trial's view of a future of the shared executor; the sweep can fail it on Ctrl-C."""

    def __init__(self, inner: Future[Any]) -> None:
        super().__init__()
        self.inner = inner
        inner.add_done_callback(self._copy)

    def _copy(self, inner: Future[Any]) -> None:
        try:
            if inner.cancelled():
                super().cancel()
            elif inner.exception() is not None:
                self.set_exception(inner.exception())
            else:
                self.set_result(inner.result())
        except InvalidStateError:  # already failed by the sweep's Ctrl-C
            pass

    def cancel(self) -> bool:
        # Only a step still queued in the executor is cancelled; a running one is reported.
        return self.inner.cancel() and super().cancel()

    def interrupt(self) -> None:
        self.inner.cancel()
        try:
            self.set_exception(KeyboardInterrupt())
        except InvalidStateError:
            pass


class TrialExecutor:
    """The sweep's one executor as one trial sees it: same name, same memory sharing."""

    def __init__(self, inner: Any, stop: threading.Event) -> None:
        self.inner = inner
        self.name = inner.name
        self.shares_memory = inner.shares_memory
        self.stop = stop
        self.futures: list[Linked] = []
        self.lock = threading.Lock()

    def submit(self, task: Callable[[], Any]) -> Future[Any]:
        if self.stop.is_set():
            raise KeyboardInterrupt
        linked = Linked(self.inner.submit(task))
        with self.lock:
            self.futures = [f for f in self.futures if not f.done()] + [linked]
        return linked

    def interrupt(self) -> None:
        with self.lock:
            pending = list(self.futures)
        for future in pending:
            future.interrupt()

    def cancel(self, future: Future[Any]) -> None:
        """Stop a running step (a timeout, Ctrl-C) where the shared executor can."""
        inner = future.inner if isinstance(future, Linked) else future
        stop = getattr(self.inner, "cancel", None)
        if stop is not None:
            stop(inner)
        else:
            inner.cancel()

    def __getattr__(self, name: str) -> Any:
        # What else the shared executor offers (``on_run_start``: a cluster records its
        # address and the code it received with each trial's run).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def shutdown(self) -> None:  # the sweep shuts the shared executor down, once
        pass
