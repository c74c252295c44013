"""What invalidates the step cache: code a step uses, constants, and files it names.

Each test writes a user-style module pair into the project folder, runs the pipeline,
edits a file the way a user would, reloads the modules and runs again.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml import Run
from loopml.pipelines.fingerprint import cache_key, code_fingerprint, params_json

HELPERS = '''
"""Project helpers."""


def floor() -> int:
    return 0


def clean(x: int) -> int:
    """Drop negatives."""
    return max(x, floor())
'''

PIPES = '''
"""Project pipelines."""
from __future__ import annotations

import {helpers} as helpers
from loopml import pipeline, step

THRESHOLD = 3


@step
def source(n: int) -> int:
    return n


@step
def prepare(x: int) -> int:
    return helpers.clean(x) + 1


@step
def gate(x: int) -> bool:
    return x > THRESHOLD


@step
def read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


@pipeline
def flow(n: int = 5, path: str = "data.csv"):
    value = prepare(source(n))
    gate(value)
    return read(path)
'''

Loader = Callable[[], types.ModuleType]


@pytest.fixture
def user_code(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path, Loader]]:
    """``helpers_X.py`` and ``pipes_X.py`` in the project; the loader (re)imports both."""
    monkeypatch.setattr(
        sys, "dont_write_bytecode", True
    )  # so a same-second edit is never read from a stale .pyc
    suffix = uuid.uuid4().hex[:8]
    helpers_name, pipes_name = f"helpers_{suffix}", f"pipes_{suffix}"
    helpers = project / f"{helpers_name}.py"
    pipes = project / f"{pipes_name}.py"
    helpers.write_text(HELPERS)
    pipes.write_text(PIPES.format(helpers=helpers_name))
    (project / "data.csv").write_text("a,b\n1,2\n")
    monkeypatch.syspath_prepend(str(project))

    def load() -> types.ModuleType:
        if pipes_name in sys.modules:
            importlib.reload(sys.modules[helpers_name])
            return importlib.reload(sys.modules[pipes_name])
        return importlib.import_module(pipes_name)

    yield helpers, pipes, load
    sys.modules.pop(helpers_name, None)
    sys.modules.pop(pipes_name, None)


def cached(run: Run) -> dict[str, bool]:
    return {s.name: s.cached for s in run.steps}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_unchanged_code_is_cached(user_code: tuple[Path, Path, Loader]) -> None:
    _, _, load = user_code
    first = load().flow()
    assert cached(first) == {"source": False, "prepare": False, "gate": False, "read": False}
    second = load().flow()
    assert cached(second) == {"source": True, "prepare": True, "gate": True, "read": True}
    assert second.output("prepare") == first.output("prepare") == 6


def test_editing_a_project_helper_reruns_the_step_that_calls_it(
    user_code: tuple[Path, Path, Loader],
) -> None:
    helpers, _, load = user_code
    assert load().flow(n=-2).output("prepare") == 1
    edit(helpers, "return max(x, floor())", "return abs(x)")
    run = load().flow(n=-2)
    assert cached(run) == {"source": True, "prepare": False, "gate": False, "read": True}
    assert run.output("prepare") == 3
    # gate re-ran because its input changed; with the same input it would have been a hit


def test_helper_edit_with_same_result_reruns_only_that_step(
    user_code: tuple[Path, Path, Loader],
) -> None:
    helpers, _, load = user_code
    load().flow()
    edit(helpers, "return max(x, floor())", "return x if x > floor() else floor()")
    run = load().flow()
    assert cached(run) == {"source": True, "prepare": False, "gate": True, "read": True}


def test_editing_a_helper_of_a_helper_reruns_the_step(user_code: tuple[Path, Path, Loader]) -> None:
    helpers, _, load = user_code
    assert load().flow(n=-2).output("prepare") == 1
    edit(helpers, "    return 0\n", "    return 5\n")
    run = load().flow(n=-2)
    assert cached(run)["prepare"] is False
    assert run.output("prepare") == 6


def test_editing_a_comment_or_docstring_keeps_the_cache(
    user_code: tuple[Path, Path, Loader],
) -> None:
    helpers, pipes, load = user_code
    load().flow()
    edit(helpers, '"""Drop negatives."""', '"""Clamp at zero; negatives become 0."""')
    edit(helpers, "return max(x, floor())", "return max(x,   floor())  # clamp")
    edit(
        pipes,
        "    return helpers.clean(x) + 1",
        "    # the +1 keeps zero out\n    return helpers.clean(x) + 1",
    )
    run = load().flow()
    assert all(cached(run).values()), cached(run)


def test_editing_a_global_constant_reruns_the_step_using_it(
    user_code: tuple[Path, Path, Loader],
) -> None:
    _, pipes, load = user_code
    assert load().flow().output("gate") is True
    edit(pipes, "THRESHOLD = 3", "THRESHOLD = 30")
    run = load().flow()
    assert cached(run) == {"source": True, "prepare": True, "gate": False, "read": True}
    assert run.output("gate") is False


def test_editing_the_step_body_reruns_it(user_code: tuple[Path, Path, Loader]) -> None:
    _, pipes, load = user_code
    load().flow()
    edit(pipes, "    return n\n", "    return n * 2\n")
    run = load().flow()
    assert cached(run) == {"source": False, "prepare": False, "gate": False, "read": True}
    assert run.output("prepare") == 11


def test_editing_a_data_file_named_by_a_parameter_reruns_its_step(
    user_code: tuple[Path, Path, Loader], project: Path
) -> None:
    _, _, load = user_code
    assert load().flow().output("read") == "a,b\n1,2\n"
    (project / "data.csv").write_text("a,b\n7,8\n")  # same size, new content
    run = load().flow()
    assert cached(run) == {"source": True, "prepare": True, "gate": True, "read": False}
    assert run.output("read") == "a,b\n7,8\n"
    assert all(cached(load().flow()).values())


def test_closure_constants_are_part_of_the_fingerprint() -> None:
    from loopml import step

    def make(offset: int) -> object:
        @step
        def shifted(x: int) -> int:
            return x + offset

        return shifted

    assert code_fingerprint(make(1)) == code_fingerprint(make(1))
    assert code_fingerprint(make(1)) != code_fingerprint(make(2))


def test_cache_key_is_a_pure_function_of_its_inputs() -> None:
    a = cache_key("m.f", "code", params_json({"alpha": 0.5, "n": 1}), {"x": "d1", "y": "d2"})
    b = cache_key("m.f", "code", params_json({"n": 1, "alpha": 0.5}), {"y": "d2", "x": "d1"})
    assert a == b
    assert a != cache_key(
        "m.f", "code", params_json({"alpha": 0.6, "n": 1}), {"x": "d1", "y": "d2"}
    )
    assert a != cache_key(
        "m.g", "code", params_json({"alpha": 0.5, "n": 1}), {"x": "d1", "y": "d2"}
    )
    assert a != cache_key(
        "m.f", "code2", params_json({"alpha": 0.5, "n": 1}), {"x": "d1", "y": "d2"}
    )
    assert a != cache_key(
        "m.f", "code", params_json({"alpha": 0.5, "n": 1}), {"x": "d1", "y": "d3"}
    )


def test_param_naming_a_file_hashes_its_content(project: Path) -> None:
    data = project / "table.csv"
    data.write_text("1\n")
    before = params_json({"path": "table.csv"})
    data.write_text("2\n")
    assert params_json({"path": "table.csv"}) != before
    assert params_json({"path": "no-such-file.csv"}) == '{"path":"no-such-file.csv"}'


def test_lists_tuples_and_dicts_of_paths_are_hashed_element_by_element(project: Path) -> None:
    (project / "a.csv").write_text("1\n")
    (project / "raw").mkdir()
    (project / "raw" / "x.txt").write_text("x")
    hints = {"files": list[Path], "named": dict[str, Path], "pair": "tuple[Path, ...]"}
    params: dict[str, Any] = {
        "files": ["a.csv", "raw"],  # str elements of a list[Path]: paths, folders included
        "named": {"train": "raw"},
        "pair": ("raw",),
        "words": ["raw", "north"],  # list[str]: a folder name is only text
    }
    before = params_json(params, hints)
    (project / "raw" / "x.txt").write_text("y")
    after = json.loads(params_json(params, hints))
    assert json.loads(before)["words"] == after["words"] == ["raw", "north"]
    for name in ("files", "named", "pair"):
        assert json.loads(before)[name] != after[name], name
    assert after["files"][0]["path"] == "a.csv"  # the unchanged element keeps its digest
    assert json.loads(before)["files"][0] == after["files"][0]
