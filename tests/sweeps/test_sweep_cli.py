"""``loopml sweep``: the real console script on a project whose pipelines are ``pl_sweep``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_runner import run_cli

ENV = {"LOOPML_STORE_URI": "", "LOOPML_ARTIFACTS_URI": "", "LOOPML_HEARTBEAT_SECONDS": "0.5"}
RESOURCE = Path(__file__).resolve().parents[1] / "resources" / "pl_sweep.py"


@pytest.fixture
def here(project: Path) -> Path:
    shutil.copy(RESOURCE, project / "pipelines.py")
    return project


def sweep(here: Path, *args: str):  # type: ignore[no-untyped-def]
    return run_cli("sweep", *args, cwd=here, env=ENV)


def test_grid_sweep_reports_the_best_trial_and_show_reopens_it(here: Path) -> None:
    done = sweep(
        here, "quad", "-p", "x=0,1", "-p", "depth=1..2", "--metric", "loss", "--parallel", "2"
    )
    assert done.returncode == 0, done.stderr
    assert "4 trials (4 succeeded)" in done.stdout
    assert (
        "Best: trial 3 quad#" in done.stdout and "loss=1.09 (min) with x=1 depth=1" in done.stdout
    )
    assert "loopml runs show " in done.stdout
    assert done.stderr.count("succeeded") == 4  # one plain line per trial off a terminal
    sweep_id = done.stdout.split("loopml sweep show ")[1].split()[0]
    shown = sweep(here, "show", sweep_id, "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["id"] == sweep_id and data["metric"] == "loss" and data["goal"] == "min"
    assert [t["params"] for t in data["trials"]] == [
        {"depth": d, "x": x} for x in ("0.0", "1.0") for d in ("1", "2")
    ]
    assert data["best"]["number"] == 3
    highest = json.loads(sweep(here, "show", sweep_id, "--maximize", "--json").stdout)
    assert highest["best"]["number"] == 2 and highest["goal"] == "max"
    listed = run_cli("runs", "--filter", f"tags.sweep = '{sweep_id}'", "--json", cwd=here, env=ENV)
    assert len(json.loads(listed.stdout)) == 4


def test_random_json_sweep_is_machine_readable(here: Path) -> None:
    done = sweep(
        here,
        "run",
        "quad",
        "-p",
        "x=log:0.01..1",
        "--random",
        "3",
        "--seed",
        "5",
        "--metric",
        "loss",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    data = json.loads(done.stdout)
    assert data["strategy"] == "random" and data["seed"] == 5 and len(data["trials"]) == 3
    assert data["best"]["value"] == min(t["value"] for t in data["trials"])


def test_every_trial_failing_exits_1_with_the_table(here: Path) -> None:
    done = sweep(here, "sleepy", "-p", "tag=fail", "--no-cache")
    assert done.returncode == 1
    assert "1 trials (1 failed)" in done.stdout and "asked to fail" in done.stdout
    assert "Error: every trial of sweep sleepy-" in done.stderr
    assert "Traceback" not in done.stderr.split("Error:")[-1]


def test_some_failures_still_exit_0(here: Path) -> None:
    done = sweep(here, "sleepy", "-p", "tag=a,fail", "--metric", "length")
    assert done.returncode == 0, done.stderr
    assert "(1 failed, 1 succeeded)" in done.stdout


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["quad", "-p", "detph=1,2"], 1, "Did you mean 'depth'?"),
        (["quad", "-p", "x=0.001..0.1"], 1, "a grid needs values. Give a list"),
        (["quad", "-p", "depth=8..3"], 1, "the range is empty"),
        (["quad", "-p", "x=0..1", "--optuna", "2"], 1, "needs the metric"),
        (["quad", "-p", "x=0,1", "--random", "2", "--optuna", "2"], 2, "not both"),
        (["quad"], 2, "Give the values to try with -p"),
        (["nope", "-p", "x=1"], 1, "Unknown pipeline 'nope'"),
        (["show", "quad-00000000"], 1, "No loopml store"),  # read-only: no store made
    ],
)
def test_bad_input_is_a_clear_error(here: Path, args: list[str], code: int, says: str) -> None:
    done = sweep(here, *args)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_help_names_the_shortcut_and_the_options(here: Path) -> None:
    top = sweep(here, "--help")
    assert top.returncode == 0 and "loopml sweep PIPELINE -p" in top.stdout
    run = sweep(here, "run", "--help")
    for option in (
        "--random",
        "--optuna",
        "--metric",
        "--maximize",
        "--parallel",
        "--on",
        "--json",
    ):
        assert option in run.stdout
