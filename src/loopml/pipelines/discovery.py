"""Finding a project's pipelines: import the modules named in ``loopml.toml``."""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError, NotFoundError, did_you_mean
from loopml.pipelines.pipeline import Pipeline

if TYPE_CHECKING:
    from loopml.config import Settings


def load_pipelines(settings: Settings) -> dict[str, Pipeline]:
    """Every ``@pipeline`` defined at the top level of the project's pipeline modules."""
    root = str(settings.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    found: dict[str, Pipeline] = {}
    for module_name in settings.pipelines:
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
