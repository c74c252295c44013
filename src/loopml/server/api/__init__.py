"""The ``/api`` routers, one module per noun; each route calls the library, nothing more."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter

#: Modules of this package that hold a ``router``, in the order the docs list them.
MODULES = (
    "runs",
    "tracking",
    "metrics",
    "artifacts",
    "data",
    "models",
    "promotions",
    "evaluations",
    "pipelines",
    "schedules",
    "monitors",
    "feedback",
    "tokens",
)


def ROUTERS() -> list[APIRouter]:  # noqa: N802 - reads as the constant it stands for
    return [importlib.import_module(f"{__name__}.{m}").router for m in MODULES]
