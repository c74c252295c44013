"""``loopml runs`` (list, filter, sort, show, compare) and ``loopml lineage``.

One demo project, inside a git repository so runs record their commit, with three runs
of ``train``: #1 alpha=0.5, #2 the same (every step cached), #3 alpha=0.1.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cli_runner import run_cli

ENV = {"LOOPML_STORE_URI": "", "LOOPML_ARTIFACTS_URI": "", "LOOPML_HEARTBEAT_SECONDS": "0.5"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cli-runs")
    assert run_cli("init", "demo", cwd=base, env=ENV).returncode == 0
    project = base / "demo"
    git = [
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "-c",
        "commit.gpgsign=false",
    ]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "demo"], cwd=project, check=True)
    for alpha in ("0.5", "0.5", "0.1"):
        result = run_cli("run", "train", "-p", f"alpha={alpha}", cwd=project, env=ENV)
        assert result.returncode == 0, result.stderr
    return project


def cli_json(project: Path, *args: str) -> Any:
    result = run_cli(*args, "--json", cwd=project, env=ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_runs_lists_newest_first_as_a_table_and_as_json(demo: Path) -> None:
    runs = cli_json(demo, "runs")
    assert [r["run"] for r in runs] == ["train#3", "train#2", "train#1"]
    assert all(
        r["status"] == "succeeded" and {"rmse", "mae", "r2"} <= set(r["metrics"]) for r in runs
    )
    table = run_cli("runs", cwd=demo, env=ENV)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.strip().splitlines()
    for column in (
        "run",
        "status",
        "duration",
        "cost",
        "params.alpha",
        "metrics.rmse",
        "metrics.mae",
        "metrics.r2",
    ):
        assert column in header.split(), header
    *rows, note = rows  # the suite's figures (metrics.diabetes.…) do not fit 80 columns
    assert [row.split()[0] for row in rows] == ["train#3", "train#2", "train#1"]
    assert "did not fit: metrics.diabetes." in note and "--columns" in note


def test_runs_filter_sort_and_limit(demo: Path) -> None:
    runs = cli_json(
        demo,
        "runs",
        "--filter",
        "metrics.rmse < 1000 and params.alpha >= 0.1",
        "--sort",
        "-metrics.rmse",
        "--limit",
        "20",
    )
    assert len(runs) == 3
    rmse = [r["metrics"]["rmse"] for r in runs]
    assert rmse == sorted(rmse, reverse=True)
    only = cli_json(demo, "runs", "--filter", "params.alpha >= 0.3")
    assert sorted(r["run"] for r in only) == ["train#1", "train#2"]
    assert len(cli_json(demo, "runs", "--limit", "1")) == 1
    assert cli_json(demo, "runs", "--filter", "metrics.rmse > 1000000") == []
    empty = run_cli("runs", "--filter", "metrics.rmse > 1000000", cwd=demo, env=ENV)
    assert empty.returncode == 0 and "No runs match" in empty.stdout


def test_runs_show_json_has_steps_resources_artifacts_git_and_cost(demo: Path) -> None:
    first = cli_json(demo, "runs", "show", "train#1")
    assert first["run"] == "train#1" and first["status"] == "succeeded"
    assert [s["name"] for s in first["steps"]] == ["load", "split", "train", "evaluate"]
    for step in first["steps"]:
        assert step["cached"] is False and step["status"] == "succeeded"
        assert step["wall_s"] is not None and step["wall_s"] >= 0
        assert step["cpu_s"] is not None and step["cpu_s"] >= 0
        assert (
            step["peak_mem_bytes"] > 10 * 2**20
        )  # a Python process with pandas is never this small
    outputs = {a["name"] for a in first["artifacts"] if a["direction"] == "output"}
    assert outputs == {"load", "split", "train", "evaluate"}
    assert re.fullmatch(r"[0-9a-f]{40}", first["git_commit"] or ""), first["git_commit"]
    assert first["git_dirty"] is False
    assert first["cost"] is not None and first["cost"] >= 0
    assert first["python_version"] and first["environment"]["packages"]["loopml"]
    cached = cli_json(demo, "runs", "show", "train#2")
    assert [s["cached"] for s in cached["steps"]] == [True] * 4
    assert cached["metrics"] == first["metrics"]


def test_runs_show_text_by_id_prefix(demo: Path) -> None:
    run_id = cli_json(demo, "runs", "show", "train#1")["id"]
    result = run_cli("runs", "show", run_id[:8], cwd=demo, env=ENV)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Run train#1  {run_id}  succeeded" in out
    for word in (
        "git",
        "cost",
        "cpu time",
        "params",
        "alpha=0.5",
        "metrics",
        "rmse=",
        "steps",
        "why",
        "no earlier run of this step",
        "wall",
        "peak mem",
        "artifacts",
    ):
        assert word in out, word
    commit = cli_json(demo, "runs", "show", "train#1")["git_commit"]
    assert commit in out
    cached = run_cli("runs", "show", "train#2", cwd=demo, env=ENV).stdout
    assert len(re.findall(r"succeeded \(cached\).*from cache: run train#1", cached)) == 4, cached


def test_runs_compare_lists_what_differs(demo: Path) -> None:
    same = cli_json(demo, "runs", "compare", "train#1", "train#2")
    assert same["runs"] == ["train#1", "train#2"]
    assert not any(name.startswith(("params.", "metrics.")) for name in same["different"]), same[
        "different"
    ]
    assert same["outputs_identical"] is True
    other = cli_json(demo, "runs", "compare", "train#1", "train#3")
    assert "params.alpha" in other["different"] and "metrics.rmse" in other["different"]
    assert other["rows"]["params.alpha"] == ["0.5", "0.1"]
    assert other["outputs_identical"] is False  # another alpha: another model, other scores
    assert {"outputs.train", "outputs.evaluate"} <= set(other["different"])
    text = run_cli("runs", "compare", "train#1", "train#3", cwd=demo, env=ENV)
    assert text.returncode == 0, text.stderr
    assert "Outputs: 2 of 4 differ (evaluate, train); the other 2 are identical." in text.stdout
    same_text = run_cli("runs", "compare", "train#1", "train#2", cwd=demo, env=ENV).stdout
    assert "Outputs: identical in every run (4 of 4 digests equal)." in same_text
    alpha = next(line for line in text.stdout.splitlines() if "params.alpha" in line)
    assert alpha.split()[1:] == ["0.5", "0.1"]
    assert "params.seed" not in text.stdout  # equal rows are hidden ...
    assert (
        "params.seed"
        in run_cli("runs", "compare", "train#1", "train#3", "--all", cwd=demo, env=ENV).stdout
    )  # ... unless --all


def test_runs_compare_highlights_different_rows_on_a_terminal(demo: Path) -> None:
    """Off a TTY there is no colour; rich's markup is checked through FORCE_COLOR."""
    result = run_cli(
        "runs",
        "compare",
        "train#1",
        "train#3",
        cwd=demo,
        env={**ENV, "FORCE_COLOR": "1", "TERM": "xterm"},
    )
    alpha = next(line for line in result.stdout.splitlines() if "params.alpha" in line)
    assert "\x1b[" in alpha, repr(alpha)


def test_lineage_of_a_run(demo: Path) -> None:
    graph = cli_json(demo, "lineage", "train#1")
    steps = {s["step"]: s for s in graph["steps"]}
    assert list(steps) == ["load", "split", "train", "evaluate"]
    assert steps["split"]["inputs"]["df"] == steps["load"]["outputs"]["load"]
    assert steps["train"]["inputs"]["suite"] == steps["split"]["outputs"]["split"]
    assert steps["evaluate"]["inputs"]["model"] == steps["train"]["outputs"]["train"]
    assert steps["evaluate"]["inputs"]["suite"] == steps["split"]["outputs"]["split"]
    tree = run_cli("lineage", "train#1", cwd=demo, env=ENV)
    assert tree.returncode == 0, tree.stderr
    assert "run train#1" in tree.stdout and steps["train"]["outputs"]["train"][:12] in tree.stdout


def test_lineage_of_an_artifact_by_digest_prefix(demo: Path) -> None:
    model = cli_json(demo, "lineage", "train#1")["steps"][2]["outputs"]["train"]
    info = cli_json(demo, "lineage", model[:10])
    assert info["artifact"]["digest"] == model
    assert {(p["step"], p["direction"]) for p in info["produced_by"]} == {("train", "output")}
    # train#2 took the same model from the cache; train#3 (alpha=0.1) made a different one.
    ids = {cli_json(demo, "runs", "show", ref)["id"]: ref for ref in ("train#1", "train#2")}
    assert sorted(ids[p["run_id"]] for p in info["produced_by"]) == ["train#1", "train#2"]
    assert {x["name"] for x in info["inputs"]} == {"suite", "diabetes@1"}
    assert {x["step"] for x in info["consumed_by"]} == {"evaluate"}
    text = run_cli("lineage", model[:10], cwd=demo, env=ENV)
    assert text.returncode == 0, text.stderr
    for word in ("artifact", "produced by", "from inputs", "consumed by", "train#1", "train#2"):
        assert word in text.stdout, word
