"""Finding a project's pipelines: import the modules named in ``loopml.toml``."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError, NotFoundError, did_you_mean
from loopml.pipelines.pipeline import Pipeline

if TYPE_CHECKING:
    from loopml.config import Settings


def project_on_path(root: Path) -> None:
    """Put the project folder first on ``sys.path``, as ``python`` run in it would: its
    pipelines, gate ``checks`` and custom metrics (``module:function``) import from there,
    before any module of the same name elsewhere."""
    folder = str(root)
    if not sys.path or sys.path[0] != folder:
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)


def _forget_other_projects(module_name: str, root: Path) -> None:
    """Drop ``module_name`` from ``sys.modules`` when it was imported from somewhere else than
    this project, which has a file of that name: one process (a server, a notebook, a test
    run) may look at several projects, and each has its own ``pipelines`` module."""
    loaded = sys.modules.get(module_name)
    if loaded is None:
        return
    parts = module_name.split(".")
    here = [root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")]
    mine = next((p for p in here if p.is_file()), None)
    if mine is None:
        return
    loaded_file = getattr(loaded, "__file__", None)
    if loaded_file is None or Path(loaded_file).resolve() != mine.resolve():
        for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()


def load_pipelines(settings: Settings) -> dict[str, Pipeline]:
    """Every ``@pipeline`` defined at the top level of the project's pipeline modules."""
    root = str(settings.root)
    project_on_path(settings.root)
    found: dict[str, Pipeline] = {}
    for module_name in settings.pipelines:
        _forget_other_projects(module_name, settings.root)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                raise NotFoundError(
                    f"Pipelines module {module_name!r} not found in {root}. Create {module_name}.py there, "
                    'or list your modules in loopml.toml: [project] pipelines = ["my_module"].'
                ) from None
            raise InvalidParameterError(
                f"Importing pipelines module {module_name!r} failed: {exc}."
            ) from exc
        except Exception as exc:
            raise InvalidParameterError(
                f"Importing pipelines module {module_name!r} failed: {type(exc).__name__}: {exc}."
            ) from exc
        for value in vars(module).values():
            if isinstance(value, Pipeline):
                found[value.name] = value
    return found


def find_pipeline(settings: Settings, name: str) -> Pipeline:
    pipelines = load_pipelines(settings)
    if name not in pipelines:
        raise NotFoundError(
            f"Unknown pipeline {name!r}; this project has {sorted(pipelines) or 'no pipelines'}."
            f"{did_you_mean(name, pipelines)}"
        )
    return pipelines[name]


def describe(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Each parameter: name, type (as written) and default (``None`` when required).

    What ``loopml pipelines`` prints and ``GET /api/pipelines`` answers.
    """
    hints = pipeline._hints()
    found = []
    for p in pipeline.signature.parameters.values():
        annotation = hints.get(p.name, p.annotation)
        kind = (
            ""
            if annotation is inspect.Parameter.empty
            else getattr(annotation, "__name__", str(annotation).replace("typing.", ""))
        )
        required = p.default is inspect.Parameter.empty
        found.append(
            {
                "name": p.name,
                "type": kind,
                "required": required,
                "default": None if required else p.default,
            }
        )
    return found
