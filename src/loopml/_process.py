"""Who is this process, and is that other process still the one we think it is?

A pid alone says little: pids are reused, and the same pid means another process on
another machine or in another container. So a process is named by ``machine:pid:start``,
where ``machine`` is a hash of the host name, the kernel boot id and the pid namespace
(two containers on one host differ in the last), and ``start`` is the process start
time. Liveness checks (run leases, temp-file owners) compare all three.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys

_own: tuple[int, str] | None = None
_machine: str | None = None


def process_start(pid: int) -> str | None:
    """Return a token for when process ``pid`` started, ``""`` if unknown, None if it is gone.

    Linux reads ``/proc`` (cheap, exact clock ticks); other systems ask psutil.
    """
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except (FileNotFoundError, ProcessLookupError):
            return None
        except OSError:
            return ""
        # The command name may hold spaces and ')' itself, so split after the last ')'.
        fields = stat.rpartition(")")[2].split()
        if len(fields) < 20:
            return ""
        return None if fields[0] in ("Z", "X") else fields[19]
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a core dependency
        return ""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return str(round(proc.create_time() * 100))
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:
        return ""


def identity() -> tuple[int, str]:
    """(pid, start token) of this process; recomputed after a fork."""
    global _own
    pid = os.getpid()
    if _own is None or _own[0] != pid:
        _own = (pid, process_start(pid) or "0")
    return _own


def machine_id() -> str:
    """A short id of this machine *and* pid namespace (16 hex characters)."""
    global _machine
    if _machine is None:
        parts = [socket.gethostname()]
        for path in ("/proc/sys/kernel/random/boot_id",):
            try:
                with open(path) as f:
                    parts.append(f.read().strip())
            except OSError:
                parts.append("")
        try:
            parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
        except OSError:
            parts.append("")
        _machine = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return _machine


def owner_token() -> str:
    """``machine:pid:start`` naming this process."""
    pid, start = identity()
    return f"{machine_id()}:{pid}:{start}"


def owner_alive(owner: str | None) -> bool | None:
    """True/False if ``owner`` runs on this machine and is alive/gone; None if we cannot tell.

    None means "another machine, or an unknown owner": only its lease can tell.
    """
    if not owner:
        return None
    machine, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if machine != machine_id() or not pid_text.isdigit():
        return None
    found = process_start(int(pid_text))
    if found is None:
        return False
    if found == "" or start in ("", "0"):
        return True  # alive under that pid and we cannot compare start times: assume ours
    return found == start
