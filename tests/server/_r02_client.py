"""One client process of R02: send its points to a run in batches over REST, report latencies.

Usage: python _r02_client.py URL TOKEN RUN LEASE CLIENT POINTS BATCH
Point ``i`` of client ``c`` is key ``k{i % 3}``, step ``c * 10**7 + i``, value ``c + i / 8``
(exact in binary), so the test can rebuild the multiset it expects.
"""

from __future__ import annotations

import json
import random
import sys
import time

import httpx


def main(url: str, token: str, run: str, lease: str, client: int, n: int, size: int) -> None:
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    points = [
        {"key": f"k{i % 3}", "value": client + i / 8, "step": client * 10**7 + i} for i in range(n)
    ]
    rng = random.Random(client)
    with httpx.Client(
        base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        for start in range(0, n, size):
            batch = points[start : start + size]
            rng.shuffle(batch)  # the server must not deadlock on the order of the points
            began = time.perf_counter()
            r = http.post(f"/api/runs/{run}/log", json={"lease": lease, "metrics": batch})
            latencies.append(time.perf_counter() - began)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code != 200:
                print(r.text[:500], file=sys.stderr)
    print(json.dumps({"statuses": statuses, "latencies": latencies}))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], a[2], a[3], int(a[4]), int(a[5]), int(a[6]))
