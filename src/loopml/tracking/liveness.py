"""Keeping live runs honest: heartbeats, periodic flushes, signals and interpreter exit.

Each :class:`~loopml.tracking.client.Client` owns one :class:`Heartbeat`: a daemon thread
that serves that client's live runs. It renews each run's lease every heartbeat interval
*first*, then flushes buffered writes (about once a second), so a slow flush can never let
a lease lapse. A run whose process dies without ending it (SIGKILL, ``os._exit``, a killed
notebook kernel) stops renewing its lease, and the next ``loopml`` process to look marks
it ``crashed`` (at once when the dead process was on the same machine).

A renewal that finds the run no longer ours (another process swept it) is loud: a warning
on stderr at once, every later write of the run raises ``LeaseLostError``, and ending the
run raises it too, so a script or ``loopml run`` exits non-zero.

What must be process-wide is: while a run is live in the main thread, SIGTERM is turned
into ``KeyboardInterrupt`` so both Ctrl-C and ``kill`` end it as ``cancelled``; at
interpreter exit any run still live is ended (``failed`` after an uncaught exception,
``succeeded`` otherwise, as if ``end()`` had been called).
"""

from __future__ import annotations

import atexit
import logging
import signal
import sys
import threading
import time
import weakref
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from loopml._signals import leave_signals_to_main_thread
from loopml.store.status import RunStatus

if TYPE_CHECKING:
    from loopml.tracking.run import Run

FLUSH_SECONDS = 1.0
log = logging.getLogger("loopml")


class Heartbeat:
    """One thread renewing the leases of, and flushing, the live runs of one client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, Run] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._interval = FLUSH_SECONDS
        self._nudged = False
        self.beats = 0

    def live_runs(self) -> list[Run]:
        with self._lock:
            return list(self._live.values())

    def register(self, run: Run) -> None:
        """Start serving ``run``: heartbeats, flushes, signal and exit handling."""
        _install_process_hooks()
        with self._lock:
            self._live[run.id] = run
            if run.heartbeat_seconds * 0.4 < self._interval:
                self._wake.set()  # this run's lease is shorter than the loop's period
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="loopml-heartbeat", daemon=True
                )
                self._thread.start()
        _heartbeats.add(self)
        _take_sigterm()

    def nudge(self) -> None:
        """A run has many points waiting: flush now instead of at the next tick."""
        self._nudged = True
        self._wake.set()

    def unregister(self, run: Run) -> None:
        with self._lock:
            self._live.pop(run.id, None)
        _give_back_sigterm()

    def _loop(self) -> None:
        leave_signals_to_main_thread()
        last_beat: dict[str, float] = {}
        last_flush = 0.0
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            runs = self.live_runs()
            if not runs:
                self._interval = FLUSH_SECONDS
                last_beat.clear()
                continue
            # Beat well inside the shortest lease: a lease is 2.5 heartbeats long.
            self._interval = min([FLUSH_SECONDS, *(r.heartbeat_seconds * 0.4 for r in runs)])
            now = time.monotonic()
            for gone in set(last_beat) - {r.id for r in runs}:
                del last_beat[gone]
            for run in runs:  # leases first: a slow flush must not let one lapse
                # A new run's lease starts at its creation: its first beat is due a period later.
                if (
                    now - last_beat.setdefault(run.id, run.started_monotonic)
                    >= run.heartbeat_seconds * 0.9
                ):
                    try:
                        run.beat()
                        last_beat[run.id] = now
                        self.beats += 1
                    except Exception:  # a busy or briefly unavailable store: retry next tick
                        continue
            nudged, self._nudged = self._nudged, False
            if nudged or now - last_flush >= FLUSH_SECONDS * 0.9:
                if not nudged:
                    last_flush = now
                for run in runs:
                    if not nudged or run.pending():
                        run.flush(background=True)


# --- process-wide hooks ------------------------------------------------------------------

_heartbeats: weakref.WeakSet[Heartbeat] = weakref.WeakSet()
_hooks_installed = False
_uncaught: list[BaseException] = []
_previous_sigterm: Any = None
_sigterm_users = 0
_sigterm_lock = threading.Lock()


def _all_live() -> list[Run]:
    return [run for hb in list(_heartbeats) for run in hb.live_runs()]


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _uncaught.append(exc)
    _original_excepthook(kind, exc, tb)


_original_excepthook = sys.excepthook


def _at_exit() -> None:
    for run in _all_live():
        status = RunStatus.FAILED if _uncaught else RunStatus.SUCCEEDED
        error = f"{type(_uncaught[0]).__name__}: {_uncaught[0]}" if _uncaught else None
        try:
            run.end(status, error=error)
        except Exception as exc:  # the store may be gone at exit; the lease expires instead
            log.warning("loopml: could not end run %s at exit: %s", run.id[:8], exc)


def _install_process_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    sys.excepthook = _excepthook
    atexit.register(_at_exit)


def _take_sigterm() -> None:
    """While any run is live, SIGTERM in the main thread means Ctrl-C."""
    global _previous_sigterm, _sigterm_users
    with _sigterm_lock:
        _sigterm_users += 1
        if _sigterm_users != 1 or threading.current_thread() is not threading.main_thread():
            return
        try:
            current = signal.getsignal(signal.SIGTERM)
            if current in (signal.SIG_DFL, None):
                _previous_sigterm = current
                signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main interpreter thread
            pass


def _give_back_sigterm() -> None:
    global _previous_sigterm, _sigterm_users
    with _sigterm_lock:
        _sigterm_users = max(0, _sigterm_users - 1)
        if (
            _sigterm_users == 0
            and _previous_sigterm is not None
            and threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGTERM, _previous_sigterm)
            _previous_sigterm = None
