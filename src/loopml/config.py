"""Project discovery and settings: ``loopml.toml``, environment variables, defaults.

A project is the nearest folder, walking up from the working directory, that holds a
``loopml.toml`` (the way git finds ``.git``). Without one, the working directory is the
project, so a notebook needs no set-up at all. ``LOOPML_STORE_URI`` and
``LOOPML_ARTIFACTS_URI`` override the store's location; ``LOOPML_HEARTBEAT_SECONDS`` the
run heartbeat.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.errors import InvalidParameterError, did_you_mean

CONFIG_FILE = "loopml.toml"
DEFAULT_WORKERS = 16
STORE_DIR = ".loopml"

_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "project": {"name": str, "pipelines": (list, str)},
    "store": {"uri": str, "artifacts": str},
    "run": {"workers": int, "heartbeat_seconds": (int, float)},
    "cost": {
        "cpu_hour": (int, float),
        "gpu_hour": (int, float),
        "gb_hour": (int, float),
        "currency": str,
    },
}


@dataclass(frozen=True, slots=True)
class Prices:
    """Prices used to compute a run's cost (per CPU-hour, GPU-hour and GB-hour of memory)."""

    cpu_hour: float = 0.0
    gpu_hour: float = 0.0
    gb_hour: float = 0.0
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything loopml needs to know about where it runs; built by :func:`load_settings`."""

    root: Path
    store_uri: str
    artifacts_uri: str
    pipelines: tuple[str, ...] = ("pipelines",)
    workers: int = DEFAULT_WORKERS
    heartbeat_seconds: float = 10.0
    prices: Prices = field(default_factory=Prices)
    name: str = ""
    has_config: bool = False


def find_project(start: Path | None = None) -> Path | None:
    """Return the nearest folder at or above ``start`` holding ``loopml.toml``, or None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


def _check(table: dict[str, Any], path: Path) -> None:
    for section, values in table.items():
        if section not in _SCHEMA:
            raise InvalidParameterError(
                f"Unknown section [{section}] in {path}; expected one of "
                f"{sorted(_SCHEMA)}.{did_you_mean(section, _SCHEMA)}"
            )
        if not isinstance(values, dict):
            raise InvalidParameterError(f"[{section}] in {path} must be a table, got {values!r}.")
        for key, value in values.items():
            allowed = _SCHEMA[section]
            if key not in allowed:
                raise InvalidParameterError(
                    f"Unknown key {key!r} in [{section}] of {path}; expected one of "
                    f"{sorted(allowed)}.{did_you_mean(key, allowed)}"
                )
            kind = allowed[key]
            if not isinstance(value, kind) or isinstance(value, bool):
                words = {
                    "int": "an integer",
                    "float": "a number",
                    "str": "a string",
                    "list": "a list",
                }
                names = " or ".join(
                    words[k.__name__] for k in (kind if isinstance(kind, tuple) else (kind,))
                )
                raise InvalidParameterError(
                    f"[{section}] {key} in {path}: got {value!r}; expected {names}."
                )


def _store_uri(value: str, root: Path) -> str:
    """Turn a path into an SQLAlchemy SQLite URL; leave real URLs alone."""
    if "://" in value:
        return value
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = root / path
    return f"sqlite:///{path}"


def _artifacts_uri(value: str, root: Path) -> str:
    if "://" in value and not value.startswith("file://"):
        return value
    path = Path(value.removeprefix("file://")).expanduser()
    return str(path if path.is_absolute() else root / path)


def load_settings(start: Path | None = None) -> Settings:
    """Find the project and read its settings; environment variables win over the file.

    Raises:
        InvalidParameterError: ``loopml.toml`` is not valid TOML or has unknown keys.
    """
    found = find_project(start)
    root = found or (start or Path.cwd()).resolve()
    table: dict[str, Any] = {}
    if found:
        path = found / CONFIG_FILE
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise InvalidParameterError(f"{path} is not valid TOML: {exc}.") from exc
        _check(table, path)
    project = table.get("project", {})
    store = table.get("store", {})
    run = table.get("run", {})
    cost = table.get("cost", {})
    pipelines = project.get("pipelines", ["pipelines"])
    if isinstance(pipelines, str):
        pipelines = [pipelines]
    store_uri = os.environ.get("LOOPML_STORE_URI") or store.get("uri") or f"{STORE_DIR}/store.db"
    artifacts = (
        os.environ.get("LOOPML_ARTIFACTS_URI") or store.get("artifacts") or f"{STORE_DIR}/blobs"
    )
    heartbeat = float(
        os.environ.get("LOOPML_HEARTBEAT_SECONDS") or run.get("heartbeat_seconds", 10.0)
    )
    if heartbeat <= 0:
        raise InvalidParameterError(f"heartbeat_seconds: got {heartbeat!r}; expected a number > 0.")
    # Steps run on threads and mostly wait on I/O or release the GIL (numpy, sklearn, pyarrow),
    # so the default is not tied to the core count; lower it for memory-hungry steps.
    workers = int(run.get("workers", DEFAULT_WORKERS))
    if workers < 1:
        raise InvalidParameterError(f"[run] workers: got {workers!r}; expected an integer >= 1.")
    return Settings(
        root=root,
        store_uri=_store_uri(store_uri, root),
        artifacts_uri=_artifacts_uri(artifacts, root),
        pipelines=tuple(str(p) for p in pipelines),
        workers=workers,
        heartbeat_seconds=heartbeat,
        prices=Prices(**{k: v for k, v in cost.items()}),
        name=str(project.get("name", root.name)),
        has_config=found is not None,
    )
