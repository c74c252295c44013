"""The one registry of extensions: executors, blob backends and materializers, by name.

Built-ins are listed here as ``"module:Class"`` strings and imported only when used, so the
list costs nothing at start-up (Metaflow's ``plugins/__init__.py`` does the same). Third-party
packages register through the entry-point group ``loopml.plugins``, one entry per extension,
named ``KIND.NAME``::

    [project.entry-points."loopml.plugins"]
    "executor.ray" = "loopml_ray:RayExecutor"

and code can register at run time with :func:`register`. ``loopml.toml`` then names them:
``[run] executor = "ray"``. Adding a kind of extension later (model flavors, notifiers)
means one entry in ``KINDS`` and one table in ``BUILTINS``.

Anything registered is checked at once against what its kind needs; a wrong one fails
with its name and the expected interface (joblib's ``register_store_backend`` does this).
"""

from __future__ import annotations

import importlib
from typing import Any

from loopml.errors import InvalidParameterError, NotFoundError, did_you_mean

ENTRY_POINT_GROUP = "loopml.plugins"

#: What an extension of each kind must provide (attributes and methods).
KINDS: dict[str, tuple[str, ...]] = {
    "executor": ("name", "shares_memory", "submit", "shutdown"),
    "backend": ("exists", "info", "read", "write", "list", "delete"),
    "materializer": ("name", "extension", "save", "load"),
    # Registers a step's output as a model version: f(name, *, run, output, client).
    "registrar": ("__call__",),
}

BUILTINS: dict[str, dict[str, str]] = {
    "executor": {
        "local": "loopml.execution.local:LocalExecutor",
        "ray": "loopml.execution.ray_executor:RayExecutor",
    },
    # Blob backends by URL scheme; "fsspec" serves every scheme without its own entry.
    "backend": {
        "file": "loopml.artifacts.backend:LocalBackend",
        "fsspec": "loopml.artifacts.backend:FsspecBackend",
    },
    "materializer": {
        "bytes": "loopml.artifacts.materializers.builtin:BytesMaterializer",
        "text": "loopml.artifacts.materializers.builtin:TextMaterializer",
        "json": "loopml.artifacts.materializers.builtin:JsonMaterializer",
        "pandas.parquet": "loopml.artifacts.materializers.pandas:PandasParquetMaterializer",
        "polars.parquet": "loopml.artifacts.materializers.polars:PolarsParquetMaterializer",
        "numpy.npy": "loopml.artifacts.materializers.numpy:NumpyMaterializer",
        "sklearn.pickle": "loopml.artifacts.materializers.sklearn:SklearnPickleMaterializer",
        "model.pickle": "loopml.artifacts.materializers.sklearn:PredictProtocolMaterializer",
        "xgboost.ubj": "loopml.artifacts.materializers.xgboost:XGBoostMaterializer",
        "lightgbm.txt": "loopml.artifacts.materializers.lightgbm:LightGBMBoosterMaterializer",
        "lightgbm.json": "loopml.artifacts.materializers.lightgbm:LightGBMSklearnMaterializer",
        "file": "loopml.artifacts.materializers.files:FileMaterializer",
        "folder.tar": "loopml.artifacts.materializers.files:FolderMaterializer",
    },
    # Named by string, so the runner reaches the registry (a layer above it) only through here.
    "registrar": {"default": "loopml.registry.versions:register_step_output"},
}

_registered: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_entry_points: dict[str, dict[str, Any]] | None = None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidParameterError(
            f"Plugin kind {kind!r}: expected one of {sorted(KINDS)}.{did_you_mean(kind, KINDS)}"
        )


def _check(kind: str, name: str, target: Any) -> Any:
    """Return ``target`` if it provides what ``kind`` needs, else raise naming what is missing."""
    missing = [attr for attr in KINDS[kind] if not hasattr(target, attr)]
    if missing:
        article = "an" if kind[0] in "aeiou" else "a"
        raise InvalidParameterError(
            f"Plugin {kind} {name!r}: {target!r} is not {article} {kind}; it lacks "
            f"{', '.join(missing)}. {article.capitalize()} {kind} provides "
            f"{', '.join(KINDS[kind])}."
        )
    return target


def register(kind: str, name: str, target: Any) -> None:
    """Register ``target`` (a class, or a ``"module:Class"`` path) as the ``kind`` called ``name``.

    Raises:
        InvalidParameterError: unknown kind, a bad name, or a target lacking the interface.
    """
    _check_kind(kind)
    if (
        not isinstance(name, str)
        or not name
        or not name.replace(".", "").replace("-", "").replace("_", "").isalnum()
    ):
        raise InvalidParameterError(
            f"Plugin {kind} name {name!r}: expected letters, digits, '.', '-' or '_'."
        )
    if not isinstance(target, str):
        _check(kind, name, target)
    _registered[kind][name] = target


def _discovered() -> dict[str, dict[str, Any]]:
    global _entry_points
    if _entry_points is None:
        from importlib.metadata import entry_points

        found: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            kind, _, name = ep.name.partition(".")
            if kind in found and name:
                found[kind][name] = ep
        _entry_points = found
    return _entry_points


def names(kind: str) -> list[str]:
    """Every name of ``kind``: built-in, registered and from installed packages."""
    _check_kind(kind)
    return sorted({*BUILTINS.get(kind, {}), *_registered[kind], *_discovered()[kind]})


def _import(path: str) -> Any:
    module, _, attr = path.partition(":")
    target: Any = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def load(kind: str, name: str) -> Any:
    """The class (or object) registered as the ``kind`` called ``name``.

    Raises:
        NotFoundError: no such name; lists the known ones.
        InvalidParameterError: what is registered under that name is not a ``kind``.
    """
    _check_kind(kind)
    target: Any = _registered[kind].get(name)
    if target is None:
        target = BUILTINS.get(kind, {}).get(name)
    if target is None:
        ep = _discovered()[kind].get(name)
        if ep is not None:
            try:
                target = ep.load()
            except Exception as exc:
                raise InvalidParameterError(
                    f"Plugin {kind} {name!r} from package entry point {ep.value!r} failed to "
                    f"import: {type(exc).__name__}: {exc}. Reinstall or fix that package."
                ) from exc
    if target is None:
        known = names(kind)
        raise NotFoundError(
            f"Unknown {kind} {name!r}; known {kind}s: {known}.{did_you_mean(name, known)} "
            f"Install the package that provides it, or register it with "
            f"loopml.plugins.register({kind!r}, {name!r}, MyClass)."
        )
    if isinstance(target, str):
        target = _import(target)
    return _check(kind, name, target)
