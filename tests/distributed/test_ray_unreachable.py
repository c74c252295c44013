"""A cluster that cannot be reached, or a target that is not one, is a clear error before
anything runs: no run is recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ray_helpers import run_loopml

from loopml.execution.ray_executor import ExecutorUnavailableError
from ray_cluster import free_port

pytestmark = pytest.mark.xdist_group("ray")

PIPELINES = {
    "dist_unreachable": """
from loopml import pipeline, step


@step
def one() -> int:
    return 1


@pipeline(name="train")
def train() -> None:
    one()
"""
}


def no_runs() -> bool:
    done = run_loopml("runs", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) == []


def test_an_unreachable_cluster_fails_before_anything_runs() -> None:
    address = f"ray://127.0.0.1:{free_port()}"  # nothing listens there
    done = run_loopml("run", "train", "--on", address)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot be reached" in done.stderr and address in done.stderr
    assert "Traceback" not in done.stderr
    assert no_runs()


def test_an_unreachable_cluster_from_python(client: Any, pipeline_of: Any) -> None:
    address = f"ray://127.0.0.1:{free_port()}"
    with pytest.raises(ExecutorUnavailableError, match="cannot be reached") as raised:
        pipeline_of("train").run({}, executor=address, client=client)
    assert address in str(raised.value)
    assert client.search_runs() == []


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("ray://nohost", "expected ray://HOST:PORT"),
        ("bogus", "local"),
    ],
)
def test_a_malformed_or_unknown_target_is_a_clear_error(target: str, expected: str) -> None:
    done = run_loopml("run", "train", "--on", target)
    assert done.returncode != 0
    assert expected in done.stderr and "Traceback" not in done.stderr, done.stderr
    if target == "bogus":
        assert "ray" in done.stderr  # the known executors are named
    assert no_runs()
