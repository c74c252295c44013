"""Run lifecycle and discoverability (issue 12 §3, §1 "Smaller, each reproduced", §1b exports).

``runs delete`` (by reference, ``--filter``, ``--dry-run``; never a running run; a deleted
run's cache entries go too), ``runs tag``/``rename``, ``gc`` (its dry run lists exactly
what it then deletes), ``pipelines`` and ``run`` without a name, ``init .``, ambiguous
prefixes that list their candidates, exports that never overwrite without ``--force``
and clean up after killed ones, and loads of file artifacts that leave nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _cli_helpers import assert_error, cli, cli_json, dead_pid, listing, write_pipelines

from cli_runner import run_cli
from loopml.tracking.client import Client


@pytest.fixture
def store(project: Path) -> Iterator[Client]:
    """The project's own store (the one the CLI uses there), opened in this process."""
    write_pipelines(project)
    client = Client().open()
    yield client
    client.close()


def _runs(project: Path) -> dict[str, dict[str, Any]]:
    return {r["run"]: r for r in cli_json(project, "runs", "--limit", "100")}


def _adhoc(client: Client, name: str, **params: Any) -> str:
    with client.start_run(name) as run:
        run.log_params(params)
    return run.id


def _blob_files(project: Path) -> list[str]:
    return [p.name for p in (project / ".loopml" / "blobs").rglob("*") if p.is_file()]


# -- runs delete ------------------------------------------------------------------------------


def test_runs_delete_by_ref_removes_the_run_and_its_cache_entries(
    store: Client, project: Path
) -> None:
    cli(project, "run", "small")
    assert cli_json(project, "run", "small")["cached_steps"] == 2
    result = cli(project, "runs", "delete", "small#1", "-y")
    assert "Deleted 1 run and 2 cache entries" in result.stdout
    assert sorted(_runs(project)) == ["small#2"]
    missing = run_cli("runs", "show", "small#1", cwd=project)
    assert_error(missing, "No run 'small#1'")
    again = cli_json(project, "run", "small")
    assert (again["cached_steps"], again["steps"]) == (0, 2)  # the cache entries went too


def test_runs_delete_dry_run_deletes_nothing_and_filter_deletes_exactly_the_matches(
    store: Client, project: Path
) -> None:
    for kind in ("a", "b", "a"):
        _adhoc(store, "job", kind=kind)
    dry = cli(project, "runs", "delete", "--filter", "params.kind = 'a'", "--dry-run")
    assert "Would delete 2 runs:" in dry.stdout
    assert "job#1" in dry.stdout and "job#3" in dry.stdout and "job#2" not in dry.stdout
    assert sorted(_runs(project)) == ["job#1", "job#2", "job#3"]
    done = cli_json(project, "runs", "delete", "--filter", "params.kind = 'a'", "-y")
    assert done["runs"] == 2 and not done["dry_run"]
    assert sorted(_runs(project)) == ["job#2"]
    assert "No runs match" in cli(project, "runs", "delete", "--filter", "params.kind = 'a'").stdout


def test_runs_delete_refuses_a_running_run_and_deletes_nothing(
    store: Client, project: Path
) -> None:
    _adhoc(store, "job", kind="done")
    live = store.start_run("live")  # owned by this (alive) process: never swept
    try:
        result = run_cli("runs", "delete", "live#1", "job#1", "-y", cwd=project)
        assert_error(result, "Cannot delete running runs (live#1)", "Nothing was deleted")
        assert {name: r["status"] for name, r in _runs(project).items()} == {
            "live#1": "running",
            "job#1": "succeeded",
        }
    finally:
        live.end()


def test_runs_tag_sets_and_removes_tags_and_rename_keeps_the_reference(
    store: Client, project: Path
) -> None:
    _adhoc(store, "job", kind="a")
    assert (
        "Tagged job#1" in cli(project, "runs", "tag", "job#1", "reviewed=yes", "stage=dev").stdout
    )
    assert cli_json(project, "runs", "show", "job#1")["tags"] == {"reviewed": "yes", "stage": "dev"}
    cli(project, "runs", "tag", "job#1", "--remove", "stage", "stage2=prod")
    assert cli_json(project, "runs", "show", "job#1")["tags"] == {
        "reviewed": "yes",
        "stage2": "prod",
    }
    cli(project, "runs", "rename", "job#1", "baseline, before features")
    shown = cli_json(project, "runs", "show", "job#1")
    assert (shown["name"], shown["run"]) == ("baseline, before features", "job#1")
    assert "baseline, before features" in cli(project, "runs", "show", "job#1").stdout


# -- gc ---------------------------------------------------------------------------------------


def test_gc_dry_run_lists_exactly_what_gc_deletes_and_frees_every_blob_at_the_end(
    store: Client, project: Path
) -> None:
    cli(project, "run", "small", "-p", "n=3")
    cli(project, "run", "small", "-p", "n=4")
    kept = {a["digest"] for a in cli_json(project, "runs", "show", "small#2")["artifacts"]}
    first = {a["digest"] for a in cli_json(project, "runs", "show", "small#1")["artifacts"]}
    cli(project, "runs", "delete", "small#1", "-y")
    dry = cli_json(project, "gc", "--dry-run", "--grace", "0")
    assert dry["dry_run"] and set(dry["digests"]) == first - kept and dry["bytes"] > 0
    assert len(_blob_files(project)) == len(first | kept)  # the dry run deleted nothing
    done = cli_json(project, "gc", "--grace", "0")
    assert sorted(done["digests"]) == sorted(dry["digests"]) and done["bytes"] == dry["bytes"]
    assert sorted(_blob_files(project)) == sorted(d[2:] for d in kept)
    for digest in kept:  # what the remaining run uses still loads
        assert store.load_artifact(digest) in ([0, 1, 2, 3], 6)
    cli(project, "runs", "delete", "--filter", "pipeline = 'small'", "-y")
    assert set(cli_json(project, "gc", "--grace", "0")["digests"]) == kept
    assert _blob_files(project) == []
    assert cli_json(project, "gc", "--dry-run", "--grace", "0")["digests"] == []


# -- discoverability --------------------------------------------------------------------------


def test_pipelines_lists_parameters_with_types_and_defaults(store: Client, project: Path) -> None:
    out = cli(project, "pipelines").stdout
    assert "small  n: int = 3  label: str = 'x'" in out
    assert "Two steps: make a list, then sum it." in out
    assert cli_json(project, "pipelines") == {
        "small": [
            {"name": "n", "type": "int", "required": False, "default": 3},
            {"name": "label", "type": "str", "required": False, "default": "x"},
        ]
    }


def test_run_without_a_pipeline_name_lists_the_pipelines(store: Client, project: Path) -> None:
    out = cli(project, "run").stdout
    assert "small  n: int = 3  label: str = 'x'" in out
    assert "Run one with: loopml run small" in out
    assert _runs(project) == {}  # listing pipelines runs nothing


def test_init_dot_in_an_empty_folder(tmp_path: Path) -> None:
    here = tmp_path / "churn"
    here.mkdir()
    result = run_cli("init", ".", cwd=here)
    assert result.returncode == 0, result.stderr
    assert listing(here) == [".gitignore", "README.md", "loopml.toml", "pipelines.py"]
    assert 'name = "churn"' in (here / "loopml.toml").read_text()
    assert "loopml run train" in result.stdout and "cd " not in result.stdout
    assert "train" in cli_json(here, "pipelines")


def test_init_dot_keeps_an_existing_readme(tmp_path: Path) -> None:
    here = tmp_path / "mine"
    here.mkdir()
    (here / "README.md").write_text("# my notes\n")
    result = run_cli("init", ".", cwd=here)
    assert result.returncode == 0, result.stderr
    assert (here / "README.md").read_text() == "# my notes\n"
    assert "Kept your existing README.md (not overwritten)." in result.stdout
    assert listing(here) == [".gitignore", "README.md", "loopml.toml", "pipelines.py"]
    assert_error(run_cli("init", ".", cwd=here), "already a loopml project")


# -- ambiguous prefixes -----------------------------------------------------------------------


def test_lineage_of_an_ambiguous_prefix_lists_the_candidates(store: Client, project: Path) -> None:
    source = _adhoc(store, "job", kind="a")
    ids = ["abcd" + "1" * 28, "abcd" + "2" * 28]

    def copy(tx: Any) -> None:
        columns = [row[1] for row in tx.all("PRAGMA table_info(runs)")]
        chosen = ", ".join("?" if c in ("id", "number") else c for c in columns)
        for number, run_id in enumerate(ids, start=10):
            values = [run_id if c == "id" else number for c in columns if c in ("id", "number")]
            tx.execute(
                f"INSERT INTO runs ({', '.join(columns)}) SELECT {chosen} FROM runs WHERE id = ?",
                (*values, source),
            )

    store.metadata.db.write(copy)
    result = run_cli("lineage", "abcd", cwd=project)
    assert_error(result, "ambiguous", ids[0][:8], ids[1][:8], "job#10", "job#11")
    assert "No artifact or run matches" not in result.stderr
    assert cli_json(project, "lineage", ids[1][:5])["run"] == "job#11"


# -- exports ----------------------------------------------------------------------------------


def test_artifacts_get_never_overwrites_a_file_without_force(store: Client, project: Path) -> None:
    digest = store.store_value("fresh text").digest
    target = project / "existing.txt"
    target.write_text("mine")
    refused = run_cli("artifacts", "get", digest, "-o", str(target), cwd=project)
    assert_error(refused, str(target), "exists", "--force")
    assert target.read_text() == "mine"
    forced = cli(project, "artifacts", "get", digest, "-o", str(target), "--force")
    assert str(target) in forced.stdout
    assert target.read_text() == "fresh text"


def test_an_export_removes_debris_left_by_killed_exports(store: Client, project: Path) -> None:
    digest = store.store_value("fresh text").digest
    out = project / "out"
    out.mkdir()
    pid = dead_pid()
    debris_file = out / f".result.txt.{pid}-123-0a1b2c3d4e5f.part"
    debris_file.write_bytes(b"x" * 1000)
    debris_folder = out / f".data.{pid}-123-0a1b2c3d4e5f.part"
    (debris_folder / "sub").mkdir(parents=True)
    (debris_folder / "sub" / "half.csv").write_text("a,b\n")
    own = out / "notes.part"  # not debris: a user's file that merely ends in .part
    own.write_text("keep")
    cli(project, "artifacts", "get", digest, "-o", str(out / "result.txt"))
    assert listing(out) == ["notes.part", "result.txt"]
    assert (out / "result.txt").read_text() == "fresh text"


def test_loading_a_file_or_folder_artifact_twice_leaves_no_temp_folders(
    store: Client, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    assert tempfile.gettempdir() == str(private)
    (project / "data.csv").write_text("a,b\n1,2\n")
    (project / "folder" / "sub").mkdir(parents=True)
    (project / "folder" / "sub" / "x.txt").write_text("x")
    for source in (project / "data.csv", project / "folder"):
        digest = store.store_value(source).digest
        before = listing(private)
        first = store.load_artifact(digest)
        second = store.load_artifact(digest)
        assert first == second and first.name == source.name
        assert listing(private) == before
        if first.is_file():
            assert first.read_text() == "a,b\n1,2\n"
        else:
            assert (first / "sub" / "x.txt").read_text() == "x"
    assert os.listdir(private) == []
