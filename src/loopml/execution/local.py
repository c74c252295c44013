"""The local executor: steps on a pool of daemon threads in this process.

Hand-written instead of ``concurrent.futures.ThreadPoolExecutor`` because that pool's
threads are joined at interpreter exit: after Ctrl-C the process would hang until every
running step finished. Daemon threads let a cancelled run exit at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from loopml._signals import leave_signals_to_main_thread

T = TypeVar("T")


class LocalExecutor:
    """Run tasks on up to ``workers`` threads.

    Args:
        workers: how many steps may run at once (independent branches run in parallel).
    """

    name = "local"
    shares_memory = True

    def __init__(self, workers: int = 4) -> None:
        self.workers = workers
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def get_params(self) -> dict[str, Any]:
        return {"workers": self.workers}

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers})"

    def _work(self) -> None:
        leave_signals_to_main_thread()
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, task = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(task())
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)

    def submit(self, task: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work, name=f"loopml-step-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._queue.put((future, task))
        return future

    def shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        self._threads.clear()
