"""The projects in ``examples/`` run as a user runs them: copied out, through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from cli_runner import run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TESTED = {"quickstart"}


def copy_example(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(
        EXAMPLES / name, target, ignore=shutil.ignore_patterns(".loopml", "__pycache__")
    )
    return target


def run_json(*args: str, cwd: Path) -> Any:
    result = run_cli(*args, "--json", cwd=cwd)
    assert result.returncode == 0, f"loopml {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    assert "Warning" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def test_every_example_is_tested() -> None:
    examples = {p.name for p in EXAMPLES.iterdir() if (p / "loopml.toml").is_file()}
    assert examples == TESTED, f"add a test for {sorted(examples - TESTED)}"


def test_quickstart_trains_then_comes_from_the_cache(tmp_path: Path) -> None:
    project = copy_example("quickstart", tmp_path)

    first = run_json("run", "train", cwd=project)
    assert first["run"] == "train#1" and first["status"] == "succeeded"
    assert (first["steps"], first["cached_steps"]) == (4, 0)
    assert set(first["metrics"]) == {"accuracy", "f1"}
    assert first["metrics"]["accuracy"] >= 0.9 and first["metrics"]["f1"] >= 0.9
    assert first["cost"] > 0  # [cost] prices are set in the example's loopml.toml

    second = run_json("run", "train", cwd=project)
    assert second["run"] == "train#2" and second["status"] == "succeeded"
    assert (second["steps"], second["cached_steps"]) == (4, 4)
    assert second["metrics"] == first["metrics"]  # replayed from the cached step
    assert second["outputs"] == first["outputs"]

    runs = run_json("runs", "--sort", "number", cwd=project)
    assert [r["run"] for r in runs] == ["train#1", "train#2"]
    assert all(r["params"] == {"c": "1.0", "seed": "0", "test_fraction": "0.3"} for r in runs)

    check = run_cli("fsck", cwd=project)
    assert check.returncode == 0, check.stdout + check.stderr
