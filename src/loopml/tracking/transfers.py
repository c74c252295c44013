"""Moving many blobs side by side for ``push`` and ``pull``, and what the move reports.

Each blob is one task: check it, transfer it, verify it. Tasks run in a thread pool
(``[remote] jobs``, default 8): a transfer mostly waits on the network, and hashing and
file I/O release the GIL, so threads overlap well even on two cores. Results come back to
the calling thread, which alone fills the :class:`SyncReport` and calls the progress
callback, so neither needs a lock.

One blob's failure never hides another's success: every blob ends in the report. But a
network that is down fails every blob, each after its own retries, so after a few
failures in a row the blobs still queued are not started; the rerun resumes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import InvalidParameterError, RemoteError

Progress = Callable[[int, int], None]


@dataclass
class SyncReport:
    """What a ``push`` or ``pull`` moved (or, on a dry run, would move).

    Attributes:
        action: ``"push"`` or ``"pull"``.
        remote: The remote's URL.
        dry_run: True if nothing was transferred.
        transferred: (digest, size) of each blob sent or received (or that would be).
        skipped: (digest, size) of blobs already where they had to be.
        unavailable: (digest, size) of blobs ``push`` could not send: missing or damaged
            here (``loopml fsck`` lists them).
        failed: (digest, message) of blobs that could not be transferred or verified.
        not_started: (digest, size) of blobs left alone after repeated network failures.
    """

    action: str
    remote: str
    dry_run: bool
    transferred: list[tuple[str, int]] = field(default_factory=list)
    skipped: list[tuple[str, int]] = field(default_factory=list)
    unavailable: list[tuple[str, int]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    not_started: list[tuple[str, int]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """Bytes transferred (or, on a dry run, that would be)."""
        return sum(size for _, size in self.transferred)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_started

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "remote": self.remote,
            "dry_run": self.dry_run,
            "transferred": [{"digest": d, "size": s} for d, s in self.transferred],
            "in_place": len(self.skipped),
            "unavailable": [{"digest": d, "size": s} for d, s in self.unavailable],
            "errors": [{"digest": d, "error": m} for d, m in self.failed],
            "not_started": [{"digest": d, "size": s} for d, s in self.not_started],
            "bytes": self.bytes,
        }


# Outcomes of one blob's transfer, as the workers report them to the calling thread.
SENT, SKIPPED, UNAVAILABLE, FAILED, CUT = "sent", "in_place", "unavailable", "error", "cut"
Outcome = tuple[str, str]
# After this many blobs in a row failed on the network, the remote is taken to be
# unreachable: the transfers still queued are not started (a rerun resumes them).
_GIVE_UP = 3


def _each(
    rows: list[tuple[str, int]],
    jobs: int,
    work: Callable[[str, int], Outcome],
    collect: Callable[[tuple[str, int], Outcome], bool],
) -> list[tuple[str, int]]:
    """Run ``work`` on each row, ``jobs`` at a time; return the rows never started.

    ``collect`` runs in the calling thread as each row finishes (so the report and the
    progress callback need no lock) and returns False to start nothing more.
    """
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    from loopml._signals import leave_signals_to_main_thread

    queue = iter(rows)
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(jobs, len(rows))),
        thread_name_prefix="loopml-sync",
        initializer=leave_signals_to_main_thread,
    )
    running: dict[Future[Outcome], tuple[str, int]] = {}
    going = True

    def start() -> None:
        row = next(queue, None)
        if row is not None:
            running[pool.submit(work, *row)] = row

    try:
        for _ in range(jobs):
            start()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                row = running.pop(future)
                going = collect(row, future.result()) and going
                if going:
                    start()
    except BaseException:
        # Ctrl-C or a bug: start nothing more; transfers in flight end on their own.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return list(queue)


def run(
    report: SyncReport,
    rows: list[tuple[str, int]],
    jobs: int,
    work: Callable[[str, int], Outcome],
    on_progress: Progress | None,
) -> None:
    """Transfer ``rows`` with ``work`` into ``report``; raise if the transfer was cut."""
    total = sum(size for _, size in rows)
    moved = 0
    cut: list[str] = []
    streak = 0
    kinds = {
        SENT: report.transferred,
        SKIPPED: report.skipped,
        UNAVAILABLE: report.unavailable,
    }
    if on_progress is not None:
        on_progress(0, total)

    def collect(row: tuple[str, int], outcome: Outcome) -> bool:
        nonlocal moved, streak
        kind, message = outcome
        digest, size = row
        if kind in kinds:
            kinds[kind].append(row)
        else:
            report.failed.append((digest, message))
        if kind == CUT:
            cut.append(digest)
        streak = streak + 1 if kind == CUT else 0
        moved += size
        if on_progress is not None:
            on_progress(moved, total)
        return streak < _GIVE_UP

    if jobs < 1:
        raise InvalidParameterError(f"jobs: got {jobs!r}; expected an integer >= 1.")
    report.not_started = _each(rows, jobs, work, collect)
    for key in kinds.values():
        key.sort()
    report.failed.sort()
    if cut:
        raise interrupted(report, cut)


def interrupted(report: SyncReport, cut: list[str]) -> RemoteError:
    action = report.action
    n = len(cut)
    lines = [f"  {d}: {m}" for d, m in report.failed if d in set(cut[:10])]
    if n > 10:
        lines.append(f"  … and {n - 10} more (--json lists all)")
    sent = f"{len(report.transferred)} {'sent' if action == 'push' else 'received'}"
    if report.not_started:
        sent += f", {len(report.not_started)} not started after {_GIVE_UP} failures in a row"
    err = RemoteError(
        f"{action.capitalize()} {'to' if action == 'push' else 'from'} {report.remote} was "
        f"interrupted: {n} blob{'s' if n != 1 else ''} could not be transferred ({sent}, "
        f"{len(report.skipped)} already in place):\n" + "\n".join(lines) + "\nNothing partial "
        f"is stored under any digest; run `loopml {action}` again: it transfers only what is "
        "still missing."
    )
    err.report = report  # type: ignore[attr-defined]
    return err
