"""One process looking at several projects (a server, a notebook, a test run) finds each
project's own pipelines, never another's that happens to be imported or on ``sys.path``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loopml.config import load_settings
from loopml.errors import NotFoundError
from loopml.pipelines.discovery import load_pipelines

PIPELINES = """
from loopml import pipeline, step


@step
def one() -> int:
    return 1


@pipeline
def {name}():
    return one()
"""


def _project(root: Path, pipeline: str | None) -> Path:
    root.mkdir()
    (root / "loopml.toml").write_text(f'[project]\nname = "{root.name}"\n')
    if pipeline is not None:
        (root / "pipelines.py").write_text(PIPELINES.format(name=pipeline))
    return root


@pytest.fixture
def clean_modules() -> object:
    saved_path = list(sys.path)
    yield None
    sys.path[:] = saved_path
    sys.modules.pop("pipelines", None)


def test_each_project_sees_only_its_own_pipelines(tmp_path: Path, clean_modules: object) -> None:
    first = _project(tmp_path / "first", "score")
    second = _project(tmp_path / "second", "train")
    empty = _project(tmp_path / "empty", None)

    assert sorted(load_pipelines(load_settings(first))) == ["score"]
    assert sorted(load_pipelines(load_settings(second))) == ["train"]
    # Both other projects are now on sys.path and one of their modules is imported: a
    # project without a pipelines module must say so, not list theirs.
    with pytest.raises(NotFoundError, match="Pipelines module 'pipelines' not found"):
        load_pipelines(load_settings(empty))
    assert sorted(load_pipelines(load_settings(first))) == ["score"]
