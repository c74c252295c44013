"""``loopml init NAME``: a project skeleton whose example pipeline is found and valid."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cli_runner import run_cli
from loopml.config import load_settings

ENV = {"LOOPML_STORE_URI": "", "LOOPML_ARTIFACTS_URI": ""}


def test_init_creates_a_project_with_a_train_pipeline(tmp_path: Path) -> None:
    result = run_cli("init", "churn", cwd=tmp_path, env=ENV)
    assert result.returncode == 0, result.stderr
    project = tmp_path / "churn"
    assert sorted(p.name for p in project.iterdir()) == [
        ".gitignore",
        "README.md",
        "loopml.toml",
        "pipelines.py",
    ]
    assert f"Created project 'churn' in {project.resolve()}" in result.stdout
    assert "cd churn && loopml run train" in result.stdout
    config = tomllib.loads((project / "loopml.toml").read_text())
    assert config["project"]["name"] == "churn"
    settings = load_settings(project)
    assert (
        settings.has_config
        and settings.root == project.resolve()
        and settings.pipelines == ("pipelines",)
    )
    assert settings.store_uri == f"sqlite:///{project.resolve() / '.loopml' / 'store.db'}"
    assert ".loopml/" in (project / ".gitignore").read_text()
    assert "@pipeline" in (project / "pipelines.py").read_text()
    assert "{{name}}" not in "".join(p.read_text() for p in project.iterdir())


def test_init_into_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("init", "empty", cwd=tmp_path, env=ENV)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "empty" / "loopml.toml").is_file()


def test_init_force_writes_into_a_non_empty_folder_and_keeps_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    refused = run_cli("init", "busy", cwd=tmp_path, env=ENV)
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    forced = run_cli("init", "busy", "--force", cwd=tmp_path, env=ENV)
    assert forced.returncode == 0, forced.stderr
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "pipelines.py").is_file()


@pytest.mark.parametrize("name", ["a/b", "..", "-x"])
def test_init_rejects_names_that_are_not_a_folder_name(tmp_path: Path, name: str) -> None:
    where = tmp_path / "here"
    where.mkdir()
    result = run_cli("init", "--", name, cwd=where, env=ENV)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error:"), result.stderr
    assert "expected a folder name" in result.stderr
    assert list(where.iterdir()) == []
