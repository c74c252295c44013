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


def _from_other_project(module: Any, root: Path) -> bool:
    """Whether ``module`` was imported from a loopml project (a folder with ``loopml.toml``)
    other than ``root``."""
    file = getattr(module, "__file__", None)
    if file is None:
        return False
    path = Path(file).resolve()
    path = path.parent if path.name == "__init__.py" else path
    home = path.parents[len(module.__name__.split(".")) - 1]
    return home != root.resolve() and (home / "loopml.toml").is_file()


def _forget_other_projects(module_name: str, root: Path) -> None:
    """Drop ``module_name`` from ``sys.modules`` when it was imported from somewhere else than
    this project: one process (a server, a notebook, a test run) may look at several
    projects, and each has its own ``pipelines`` module. When this project has no file of
    that name, a module loaded from another loopml project (a folder with ``loopml.toml``) is
    dropped too, so its pipelines are not taken for this project's."""
    loaded = sys.modules.get(module_name)
    if loaded is None:
        return
    parts = module_name.split(".")
    here = [root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")]
    mine = next((p for p in here if p.is_file()), None)
    loaded_file = getattr(loaded, "__file__", None)
    if mine is None and not _from_other_project(loaded, root):
        return  # not another project's module (an installed package, say): keep it
    if loaded_file is None or mine is None or Path(loaded_file).resolve() != mine.resolve():
        for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()


def _module_missing(module_name: str, root: str) -> NotFoundError:
    return NotFoundError(
        f"Pipelines module {module_name!r} not found in {root}. Create {module_name}.py there, "
        'or list your modules in loopml.toml: [project] pipelines = ["my_module"].'
    )


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
                raise _module_missing(module_name, root) from None
            raise InvalidParameterError(
                f"Importing pipelines module {module_name!r} failed: {exc}."
            ) from exc
        except Exception as exc:
            raise InvalidParameterError(
                f"Importing pipelines module {module_name!r} failed: {type(exc).__name__}: {exc}."
            ) from exc
        if _from_other_project(module, settings.root):
            # This project has no such module; the one found belongs to another project
            # that is still on sys.path (one process looking at several projects).
            sys.modules.pop(module_name, None)
            raise _module_missing(module_name, root)
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
