"""Runs last (file order): after every other Ray test, all of the cluster's traffic is on
loopback. The session fixture checks the same again as it stops the cluster, and that no
cluster process is left."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from ray_cluster import RayCluster

pytestmark = pytest.mark.xdist_group("ray")

PIPELINES: dict[str, str] = {}
LOOPBACK = ("127.0.0.1", "::ffff:127.0.0.1")


def test_every_cluster_socket_is_on_loopback(ray_cluster: RayCluster) -> None:
    sockets = ray_cluster.sockets()
    assert len({pid for _, _, pid in sockets}) >= 4  # GCS, raylets, client server, workers…
    assert not [s for s in sockets if s[1] not in LOOPBACK], sockets


def test_ss_agrees_no_cluster_socket_uses_another_address(ray_cluster: RayCluster) -> None:
    ss = shutil.which("ss")
    assert ss, "ss (iproute2) is needed for the cross-check"
    pids = {p.pid for p in ray_cluster.processes()}
    done = subprocess.run([ss, "-tanp"], capture_output=True, text=True, check=True, timeout=30)
    seen = 0
    for line in done.stdout.splitlines()[1:]:
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if not owners & pids:
            continue
        seen += 1
        local = line.split()[3]
        assert local.rsplit(":", 1)[0].strip("[]") in (*LOOPBACK, "::ffff:127.0.0.1"), line
    assert seen, "ss showed none of the cluster's sockets"
