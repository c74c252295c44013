"""Measuring a step: wall time, CPU time of its thread, peak memory, captured output.

CPU time is the step thread's own (``time.thread_time``): exact even when steps run in
parallel, though it misses threads a library starts (BLAS). Peak memory is the process's
resident set sampled every 5 ms while the step runs; when steps overlap it is the
process peak during the step, which is what a machine must provide for it.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from loopml._signals import leave_signals_to_main_thread

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size of this process."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


class _Sampler:
    def __init__(self) -> None:
        self.peaks: dict[int, int] = {}
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()

    def start(self) -> int:
        key = id(object()) ^ threading.get_ident() ^ time.perf_counter_ns()
        with self.lock:
            self.peaks[key] = rss_bytes()
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="loopml-memory", daemon=True)
                self.thread.start()
        self.wake.set()
        return key

    def stop(self, key: int) -> int:
        now = rss_bytes()
        with self.lock:
            return max(self.peaks.pop(key, now), now)

    def _loop(self) -> None:
        leave_signals_to_main_thread()
        while True:
            with self.lock:
                active = bool(self.peaks)
            if not active:
                self.wake.wait(1.0)
                self.wake.clear()
                continue
            rss = rss_bytes()
            with self.lock:
                for key, peak in self.peaks.items():
                    if rss > peak:
                        self.peaks[key] = rss
            time.sleep(0.005)


_sampler = _Sampler()


class _Router(io.TextIOBase):
    """Stands in for sys.stdout/stderr: copies writes of a capturing thread to its buffer."""

    def __init__(self, original: TextIO, which: str) -> None:
        self.original = original
        self.which = which

    def write(self, text: str) -> int:
        buffers = _captures.get(threading.get_ident())
        if buffers is not None:
            buffers[self.which].write(text)
        return self.original.write(text)

    def flush(self) -> None:
        self.original.flush()

    def isatty(self) -> bool:
        return self.original.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    def fileno(self) -> int:
        return self.original.fileno()

    def __getattr__(self, name: str) -> object:
        # Jupyter's OutStream has more (set_parent, …) that the kernel calls on sys.stdout.
        return getattr(self.original, name)


_captures: dict[int, dict[str, io.StringIO]] = {}
_install_lock = threading.Lock()


def _install(ident: int, buffers: dict[str, io.StringIO]) -> None:
    with _install_lock:
        _captures[ident] = buffers
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout, "stdout")
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr, "stderr")


def _uninstall_if_idle() -> None:
    """Put the original streams back once no step is capturing (notebooks swap them per cell)."""
    with _install_lock:
        if _captures:
            return
        if isinstance(sys.stdout, _Router):
            sys.stdout = sys.stdout.original
        if isinstance(sys.stderr, _Router):
            sys.stderr = sys.stderr.original


@dataclass(slots=True)
class Measurement:
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_mem_bytes: int = 0
    stdout: str = ""
    stderr: str = ""


MAX_CAPTURE = 1_000_000  # characters kept per stream; the rest is summarized


@contextmanager
def measure() -> Iterator[Measurement]:
    """Measure the block running in this thread; output still reaches the terminal too."""
    result = Measurement()
    ident = threading.get_ident()
    buffers = {"stdout": io.StringIO(), "stderr": io.StringIO()}
    _install(ident, buffers)
    key = _sampler.start()
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        yield result
    finally:
        result.wall_s = time.perf_counter() - wall
        result.cpu_s = time.thread_time() - cpu
        result.peak_mem_bytes = _sampler.stop(key)
        with _install_lock:
            _captures.pop(ident, None)
        _uninstall_if_idle()
        for name in ("stdout", "stderr"):
            text = buffers[name].getvalue()
            if len(text) > MAX_CAPTURE:
                text = (
                    text[:MAX_CAPTURE] + f"\n… [{len(text) - MAX_CAPTURE} more characters not kept]"
                )
            setattr(result, name, text)
