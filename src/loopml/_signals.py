"""Keep Ctrl-C and SIGTERM for the main thread.

The kernel delivers a process-directed signal to any thread that does not block it. When
it picks one of loopml's background threads, Python still runs the handler in the main
thread, but only once the main thread wakes up: a main thread blocked in ``time.sleep``
or a long C call would not notice Ctrl-C until the call returns. So every thread loopml
starts blocks these signals first.
"""

from __future__ import annotations

import signal

_MAIN_THREAD_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def leave_signals_to_main_thread() -> None:
    """Call first thing in a background thread."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, _MAIN_THREAD_SIGNALS)
