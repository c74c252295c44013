"""Keeping live runs honest: heartbeats, periodic flushes, signals and interpreter exit.

One daemon thread per process serves every live run: it flushes buffered writes about
once a second and renews each run's lease every heartbeat interval. A run whose process
dies without ending it (SIGKILL, ``os._exit``, a killed notebook kernel) stops renewing
its lease, and the next ``loopml`` process to open the store marks it ``crashed``.

While a run is live in the main thread, SIGTERM is turned into ``KeyboardInterrupt`` so
both Ctrl-C and ``kill`` end it as ``cancelled``. At interpreter exit any run still live is
ended: ``failed`` after an uncaught exception, ``succeeded`` otherwise (as if ``end()``
had been called).
"""

from __future__ import annotations

import atexit
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from loopml._signals import leave_signals_to_main_thread

if TYPE_CHECKING:
    from loopml.tracking.run import Run

FLUSH_SECONDS = 1.0

_lock = threading.Lock()
_live: dict[str, Run] = {}
_thread: threading.Thread | None = None
_wake = threading.Event()
_hooks_installed = False
_uncaught: list[BaseException] = []
_previous_sigterm: Any = None


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _uncaught.append(exc)
    _original_excepthook(kind, exc, tb)


_original_excepthook = sys.excepthook


def _at_exit() -> None:
    for run in list(_live.values()):
        status = "failed" if _uncaught else "succeeded"
        error = f"{type(_uncaught[0]).__name__}: {_uncaught[0]}" if _uncaught else None
        try:
            run.end(status, error=error)
        except Exception:  # the store may be gone at exit; the lease will expire instead
            continue


def _install_process_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    sys.excepthook = _excepthook
    atexit.register(_at_exit)


def _loop() -> None:
    leave_signals_to_main_thread()
    last_beat: dict[str, float] = {}
    interval = FLUSH_SECONDS
    while True:
        _wake.wait(interval)
        _wake.clear()
        with _lock:
            runs = list(_live.values())
            if not runs:
                interval = FLUSH_SECONDS
                continue
        # Beat well inside the shortest lease: a lease is 2.5 heartbeats long.
        interval = min([FLUSH_SECONDS, *(r.heartbeat_seconds * 0.4 for r in runs)])
        now = time.monotonic()
        for run in runs:
            try:
                run.flush()
                if now - last_beat.get(run.id, 0.0) >= run.heartbeat_seconds * 0.9:
                    run.beat()
                    last_beat[run.id] = now
            except Exception:  # a busy or briefly unavailable store: try again next tick
                continue


def register(run: Run) -> None:
    """Start serving ``run``: heartbeats, flushes, signal and exit handling."""
    global _thread, _previous_sigterm
    _install_process_hooks()
    with _lock:
        _live[run.id] = run
        _wake.set()  # recompute the wake interval now: this run's lease may be short
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="loopml-heartbeat", daemon=True)
            _thread.start()
        if threading.current_thread() is threading.main_thread() and len(_live) == 1:
            try:
                current = signal.getsignal(signal.SIGTERM)
                if current in (signal.SIG_DFL, None):
                    _previous_sigterm = current
                    signal.signal(signal.SIGTERM, _on_sigterm)
            except ValueError:  # not the main interpreter thread
                pass


def unregister(run: Run) -> None:
    global _previous_sigterm
    with _lock:
        _live.pop(run.id, None)
        if (
            not _live
            and _previous_sigterm is not None
            and threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGTERM, _previous_sigterm)
            _previous_sigterm = None
