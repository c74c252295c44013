"""The public surface: ``loopml.__all__`` and the exception tree."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import json
import subprocess
import sys
from pathlib import Path

import loopml
from loopml import errors

# One or two names per capability of the loop (suites: `suite`, `create_suite`; serving:
# `predictions`); the cap makes every addition deliberate.
MAX_PUBLIC_NAMES = 29


def test_all_is_sorted_and_lists_exactly_the_exports() -> None:
    exported = sorted([*loopml._EXPORTS, "__version__"])
    assert loopml.__all__ == exported
    assert loopml.__all__ == sorted(loopml.__all__)
    assert len(set(loopml.__all__)) == len(loopml.__all__)
    assert len(loopml.__all__) <= MAX_PUBLIC_NAMES, "keep the top-level API small"
    assert sorted(dir(loopml)) == sorted(loopml.__all__)


def test_every_public_name_resolves_in_a_fresh_interpreter(tmp_path: Path) -> None:
    code = (
        "import json, loopml\n"
        "print(json.dumps({name: type(getattr(loopml, name)).__name__ for name in loopml.__all__}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(result.stdout)) == loopml.__all__


def test_public_names_come_from_their_modules_and_have_docs() -> None:
    for name, module in loopml._EXPORTS.items():
        value = getattr(loopml, name)
        assert value is getattr(__import__(module, fromlist=[name]), name)
        assert (inspect.getdoc(value) or "").strip(), f"loopml.{name} has no docstring"
    assert loopml.__version__ == importlib.metadata.version("loopml")


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        loopml.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_type_checking_imports_match_the_exports() -> None:
    """Type checkers and IDEs see exactly the names the lazy loader serves."""
    tree = ast.parse(Path(loopml.__file__).read_text(encoding="utf-8"))
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module
                imported |= {alias.name: stmt.module for alias in stmt.names}
    assert imported == loopml._EXPORTS


def test_every_error_is_a_loopml_error() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if cls.__module__ == errors.__name__
    ]
    assert len(classes) >= 10
    for cls in classes:
        assert issubclass(cls, errors.LoopmlError), f"{cls.__name__} does not subclass LoopmlError"
        assert (cls.__doc__ or "").strip(), f"{cls.__name__} has no docstring"
        assert cls.__name__ in (errors.__doc__ or ""), (
            f"{cls.__name__} is missing from the tree in errors.py"
        )
    assert loopml.LoopmlError is errors.LoopmlError


def test_errors_also_inherit_the_builtin_a_caller_would_catch() -> None:
    assert issubclass(errors.NotFoundError, LookupError)
    assert issubclass(errors.InvalidParameterError, ValueError)
    assert issubclass(errors.FilterSyntaxError, ValueError)
    assert issubclass(errors.PipelineDefinitionError, TypeError)
    assert issubclass(errors.MaterializerError, TypeError)
    assert issubclass(errors.StorageError, OSError)
