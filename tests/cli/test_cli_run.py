"""``loopml run``: the first-five-minutes journey through the real console script.

``loopml init demo`` then ``loopml run train -p alpha=0.5`` twice: the first run computes
and prints its metrics, the second takes every step from the cache. Also: every command
and subcommand has ``--help`` text, and every listing command takes ``--json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest

from cli_runner import run_cli
from loopml.cli.main import COMMANDS, cli

# Empty values make loopml fall back to loopml.toml, whatever the caller's environment holds.
ENV = {"LOOPML_STORE_URI": "", "LOOPML_ARTIFACTS_URI": "", "LOOPML_HEARTBEAT_SECONDS": "0.5"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """``loopml init demo`` and two identical runs; returns the project and both outputs."""
    base = tmp_path_factory.mktemp("cli-run")
    init = run_cli("init", "demo", cwd=base, env=ENV)
    assert init.returncode == 0, init.stderr
    project = base / "demo"
    first = run_cli("run", "train", "-p", "alpha=0.5", cwd=project, env=ENV)
    second = run_cli("run", "train", "-p", "alpha=0.5", cwd=project, env=ENV)
    return {"project": project, "first": first, "second": second}


def test_first_run_succeeds_and_prints_its_metrics(demo: dict[str, object]) -> None:
    first = demo["first"]
    assert first.returncode == 0, first.stderr  # type: ignore[attr-defined]
    out = first.stdout  # type: ignore[attr-defined]
    assert re.search(r"Run train#1 \([0-9a-f]{8}\) succeeded in .* 0/4 steps from cache", out), out
    for metric in ("rmse", "mae", "r2"):
        assert re.search(rf"\b{metric}=[-\d.]+", out), out
    assert "loopml runs show" in out
    assert "Traceback" not in first.stderr  # type: ignore[attr-defined]
    # Off a terminal, progress is one line per step on stderr.
    for step in ("load", "split", "train", "evaluate"):
        assert re.search(rf"succeeded\s+{step}\b", first.stderr), first.stderr  # type: ignore[attr-defined]


def test_second_identical_run_takes_every_step_from_the_cache(demo: dict[str, object]) -> None:
    second = demo["second"]
    assert second.returncode == 0, second.stderr  # type: ignore[attr-defined]
    assert "Run train#2" in second.stdout  # type: ignore[attr-defined]
    assert "4/4 steps from cache" in second.stdout  # type: ignore[attr-defined]
    metrics = lambda text: sorted(re.findall(r"\b(?:rmse|mae|r2)=[-\d.]+", text))  # noqa: E731
    assert metrics(second.stdout) == metrics(demo["first"].stdout)  # type: ignore[attr-defined]


def test_runs_json_lists_both_runs_with_their_metrics(demo: dict[str, object]) -> None:
    result = run_cli("runs", "--json", cwd=demo["project"], env=ENV)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)
    assert [r["run"] for r in runs] == ["train#2", "train#1"]
    for r in runs:
        assert r["status"] == "succeeded"
        assert {"rmse", "mae", "r2"} <= set(r["metrics"])
        assert r["params"]["alpha"] == "0.5"
    assert runs[0]["metrics"] == runs[1]["metrics"]


def test_run_json_reports_cached_steps_and_outputs(demo: dict[str, object], tmp_path: Path) -> None:
    result = run_cli("run", "train", "-p", "alpha=0.5", "--json", cwd=demo["project"], env=ENV)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "succeeded"
    assert (data["cached_steps"], data["steps"]) == (4, 4)
    assert set(data["outputs"]) == {"load", "split", "train", "evaluate"}
    assert {"rmse", "mae", "r2"} <= set(data["metrics"])
    assert result.stderr == ""  # --json is quiet: nothing but the JSON document


def test_no_cache_runs_every_step_again(demo: dict[str, object]) -> None:
    result = run_cli(
        "run", "train", "-p", "alpha=0.5", "--no-cache", "--json", cwd=demo["project"], env=ENV
    )  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cached_steps"] == 0


def _commands() -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [()]
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None, name
        found.append((name,))
        if isinstance(command, click.Group):
            found += [(name, sub) for sub in command.list_commands(click.Context(command))]
    return found


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "loopml")
def test_every_command_has_help(command: tuple[str, ...], tmp_path: Path) -> None:
    result = run_cli(*command, "--help", cwd=tmp_path, env=ENV)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Usage: loopml" in result.stdout
    description = result.stdout.split("\n\n")[1].strip()
    assert len(description) > 15, result.stdout  # a real sentence, not an empty docstring


def test_every_listing_command_takes_json() -> None:
    ctx = click.Context(cli)
    with_json = set()
    for command in _commands()[1:]:
        target = cli.get_command(ctx, command[0])
        if len(command) == 2:
            assert isinstance(target, click.Group)
            target = target.get_command(ctx, command[1])
        assert target is not None
        if any("--json" in p.opts for p in target.params):
            with_json.add(" ".join(command))
    listings = {
        "run",
        "runs",
        "runs show",
        "runs compare",
        "lineage",
        "artifacts list",
        "artifacts show",
        "fsck",
    }
    assert listings <= with_json, sorted(listings - with_json)


def test_help_is_fast_enough_to_not_import_the_world(tmp_path: Path) -> None:
    """``loopml --help`` must not import the store, pandas or the project's pipelines."""
    env = {**ENV, "PYTHONPROFILEIMPORTTIME": "1"}
    result = run_cli("--help", cwd=tmp_path, env=env)
    assert result.returncode == 0
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert not {"sqlalchemy", "pandas", "numpy"} & imported, sorted(
        {"sqlalchemy", "pandas", "numpy"} & imported
    )
