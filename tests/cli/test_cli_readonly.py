"""Reading never writes (issue 12 §1): read commands never create a store, a folder or a file.

Outside any project they fail with "No loopml store at …"; in a project that never ran,
``loopml runs`` says so; a mistyped ``LOOPML_STORE_URI`` creates nothing; and a store
on a disk this process cannot write (an archived copy, a read-only mount) can still be
listed, shown and checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli_helpers import assert_error, cli, cli_json, listing, read_only_copy, write_pipelines

from cli_runner import run_cli

READ_COMMANDS = [
    ("runs",),
    ("runs", "--json"),
    ("runs", "show", "abcd1234"),
    ("artifacts", "list"),
    ("artifacts", "get", "abcdef12"),
    ("lineage", "abcd1234"),
    ("fsck",),
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_read_commands_outside_a_project_create_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_text("mine")
    before = listing(tmp_path)
    result = run_cli(*command, cwd=outside)
    assert_error(result, f"No loopml store at {outside / '.loopml' / 'store.db'}")
    assert "loopml init" in result.stderr  # says how to get a store
    assert listing(tmp_path) == before


def test_runs_in_a_project_that_never_ran_says_no_runs_yet(project: Path) -> None:
    before = listing(project)
    result = cli(project, "runs")
    assert "No runs yet" in result.stdout
    assert cli_json(project, "runs") == []
    assert listing(project) == before == ["loopml.toml"]


@pytest.mark.parametrize(
    "command", [("runs",), ("runs", "show", "small#1"), ("fsck",)], ids=" ".join
)
def test_a_mistyped_sqlite_store_uri_creates_no_folders(
    tmp_path: Path, project: Path, command: tuple[str, ...]
) -> None:
    typo = tmp_path / "x" / "nonexistent" / "store.db"
    before = listing(tmp_path)
    result = run_cli(*command, cwd=project, env={"LOOPML_STORE_URI": f"sqlite:///{typo}"})
    assert_error(result, f"No loopml store at {typo}", "LOOPML_STORE_URI")
    assert not (tmp_path / "x").exists()
    assert listing(tmp_path) == before


def test_a_store_on_a_read_only_disk_can_be_listed_shown_and_checked(
    tmp_path: Path, project: Path
) -> None:
    write_pipelines(project)
    cli(project, "run", "small", "-p", "n=4")
    shown = cli_json(project, "runs", "show", "small#1")
    output = next(a["digest"] for a in shown["artifacts"] if a["name"] == "total")
    with read_only_copy(project, tmp_path / "archive") as archive:
        before = listing(archive)
        listed = cli_json(archive, "runs")
        assert [(r["run"], r["status"]) for r in listed] == [("small#1", "succeeded")]
        table = cli(archive, "runs").stdout
        assert "small#1" in table and "succeeded" in table
        again = cli_json(archive, "runs", "show", "small#1")
        assert again["params"] == {"n": "4", "label": "x"}
        assert [s["name"] for s in again["steps"]] == ["make", "total"]
        assert "small#1" in cli(archive, "runs", "show", "small#1").stdout
        assert output in {a["digest"] for a in cli_json(archive, "artifacts", "list")}
        assert "run small#1" in cli(archive, "lineage", "small#1").stdout
        assert "0 problems" in cli(archive, "fsck").stdout
        exported = tmp_path / "total.json"
        cli(archive, "artifacts", "get", output, "-o", str(exported))
        assert exported.read_text().strip() == "6"
        assert listing(archive) == before
