"""A scheduler process for the multi-process tests: an accelerated clock, instant jobs.

Usage: python sched_proc.py STORE_URL BASE T0 SPEED STARTS_LOG [LEASE_S]

The clock is ``BASE + (time.time() - T0) * SPEED``: every process started with the same
BASE and T0 sees the same simulated time. Each started fire appends one line,
``schedule due_at fire_id pid``, to STARTS_LOG (O_APPEND: lines from many processes never
mix), and its job ends at once with exit status 0. Runs until killed (SIGTERM or SIGKILL).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


class Done:
    run_id = None
    error = None

    def poll(self) -> int:
        return 0

    def kill(self) -> None:
        pass


def main() -> None:
    url, base, t0, speed, log_path = sys.argv[1:6]
    lease = float(sys.argv[6]) if len(sys.argv) > 6 else 2.0
    from loopml.scheduler.loop import Scheduler
    from loopml.tracking.client import Client

    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def starter(request):  # type: ignore[no-untyped-def]
        fire = request.fire
        os.write(fd, f"{fire.schedule} {fire.due_at!r} {fire.id} {os.getpid()}\n".encode())
        return Done()

    def clock() -> float:
        return float(base) + (time.time() - float(t0)) * float(speed)

    client = Client(store_uri=url).open()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sched = Scheduler(
        client,
        clock=clock,
        tick_s=0.02,
        lease_s=lease,
        starter=starter,
        max_running=256,
        sync_config=False,
    )
    print("ready", flush=True)
    sched.run(stop)


if __name__ == "__main__":
    main()
