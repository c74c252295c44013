"""Lease child: a second host, its clock SKEW seconds ahead, sweeps the store.

Usage: ``python lease_skewed_host.py STORE_URL SKEW`` with the project as working directory.
Before loopml is imported, ``time.time`` is moved SKEW seconds ahead and the host name is
changed, so this process's machine id differs from the test's: it cannot ask whether the
test's process is alive and only the runs' leases can tell it what is dead, exactly as on
another host. It opens the store (which sweeps), sweeps once more, and prints one JSON line:
how many runs that second sweep marked crashed, every run's status as it sees them, and
how far its clock is ahead of the database's.
"""

from __future__ import annotations

import json
import socket
import sys
import time

STORE_URL, SKEW = sys.argv[1], float(sys.argv[2])
_real_time = time.time
time.time = lambda: _real_time() + SKEW
socket.gethostname = lambda: "skewed-host"

from loopml.tracking.client import Client  # noqa: E402

client = Client(store_uri=STORE_URL)
client.metadata.open()
swept = client.sweep()
db_now = client.metadata.db.read(lambda tx: tx.scalar(f"SELECT {tx.now}"))
statuses = client.metadata.db.read(lambda tx: tx.all("SELECT id, status FROM runs"))
print(
    json.dumps(
        {
            "swept": swept,
            "statuses": {run_id: status for run_id, status in statuses},
            "clock_ahead_s": time.time() - float(db_now),
        }
    ),
    flush=True,
)
client.close()
