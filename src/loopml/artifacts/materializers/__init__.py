"""The materializer registry: which materializer stores a value, found by the value's type.

Built-ins are listed by dotted path and type name, so registering them imports nothing:
pandas, numpy, polars, pyarrow, sklearn, xgboost and lightgbm are imported only when a value of their type
is stored or loaded (Metaflow's lazy plugin list, Hamilton's string-keyed registries).
Lookup walks ``type(value).__mro__``; at each class, user registrations come before
built-ins, so the most specific registration wins and a user's wins a tie.

A materializer may also define ``problem(value) -> str | None``: a reason why it cannot
store this particular value (a dict with int keys is not JSON), so lookup moves on.

Registrations live in a :class:`MaterializerRegistry`. ``register_materializer`` adds to
the process-wide default; each ``Client`` has its own registry whose lookups fall back to
the default, so two clients (a server holding two projects) can register differently.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from loopml.errors import MaterializerError, NotFoundError, did_you_mean
from loopml.plugins import BUILTINS

__all__ = [
    "Materializer",
    "MaterializerRegistry",
    "default_registry",
    "materializer_for",
    "materializer_named",
    "register_materializer",
    "type_name",
]


@runtime_checkable
class Materializer(Protocol):
    """Turns values of some type into exactly one file, and back.

    Attributes:
        name: Stable id recorded with every artifact (e.g. ``"pandas.parquet"``); never
            rename it once artifacts were stored with it.
        extension: File extension suggested for exports, e.g. ``".parquet"``.
    """

    name: str
    extension: str

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        """Write ``value`` as exactly one file at ``path``; return JSON-able metadata.

        ``path`` has no meaningful extension: open it yourself if your library would
        append one (``numpy.save`` does).
        """
        ...

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        """Read the value back from ``path``, given the metadata ``save`` returned."""
        ...


_BUILTIN_CLASSES = BUILTINS["materializer"]

_JSON_TYPES = (dict, list, tuple, int, float, bool, type(None))
# Keys are classes (cheap stdlib types) or "module.QualName" strings (third-party types,
# spelled both ways where a library rewrites __module__, as pandas does).
_BUILTIN_TYPES: dict[type | str, tuple[str, ...]] = {
    bytes: ("bytes",),
    bytearray: ("bytes",),
    str: ("text",),
    **{t: ("json",) for t in _JSON_TYPES},
    pathlib.Path: ("file", "folder.tar"),
    "pandas.DataFrame": ("pandas.parquet",),
    "pandas.core.frame.DataFrame": ("pandas.parquet",),
    "pandas.Series": ("pandas.parquet",),
    "pandas.core.series.Series": ("pandas.parquet",),
    "polars.DataFrame": ("polars.parquet",),
    "polars.dataframe.frame.DataFrame": ("polars.parquet",),
    "polars.Series": ("polars.parquet",),
    "polars.series.series.Series": ("polars.parquet",),
    "numpy.ndarray": ("numpy.npy",),
    "numpy.generic": ("numpy.npy",),
    # XGBoost's and LightGBM's scikit-learn wrappers subclass BaseEstimator, but their own
    # classes come first in the MRO, so their native formats win; what those refuse (an
    # unfitted wrapper, a callable objective) moves on to the pickle.
    "xgboost.core.Booster": ("xgboost.ubj",),
    "xgboost.sklearn.XGBModel": ("xgboost.ubj",),
    "lightgbm.basic.Booster": ("lightgbm.txt",),
    "lightgbm.sklearn.LGBMModel": ("lightgbm.json",),
    "sklearn.base.BaseEstimator": ("sklearn.pickle",),
}
_SUPPORTED = (
    "bytes, str, JSON-able dict/list/tuple/int/float/bool/None, pandas.DataFrame/Series, "
    "polars.DataFrame/Series, numpy.ndarray and scalars, scikit-learn estimators, "
    "XGBoost and LightGBM models (Booster and scikit-learn wrappers), "
    "pathlib.Path (a file or a folder), and any model with a predict() method"
)

_builtin_instances: dict[str, Materializer] = {}


def type_name(cls: type) -> str:
    """Return ``"module.QualName"`` for a class, the spelling used in registrations."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _builtin(name: str) -> Materializer:
    found = _builtin_instances.get(name)
    if found is None:
        from loopml.plugins import load

        found = load("materializer", name)()
        _builtin_instances[name] = found
    return found


def _describe(cls: type | str) -> str:
    return cls if isinstance(cls, str) else type_name(cls)


class MaterializerRegistry:
    """Which materializer stores values of which type; user registrations win over built-ins.

    Args:
        parent: a registry consulted after this one's own registrations (the default).
    """

    def __init__(self, parent: MaterializerRegistry | None = None) -> None:
        self.parent = parent
        self._types: dict[type | str, list[Materializer]] = {}
        self._named: dict[str, Materializer] = {}

    def register(self, type_: type | str, materializer: Materializer) -> None:
        """Use ``materializer`` for values of ``type_`` and its subclasses (see
        :func:`register_materializer`)."""
        if not (isinstance(type_, type) or (isinstance(type_, str) and _is_dotted(type_))):
            raise MaterializerError(
                f"register_materializer() needs a class or a 'module.QualName' string as type_; "
                f"got {type_!r}. Example: register_materializer('pandas.DataFrame', MyMaterializer())."
            )
        _check_materializer(materializer)
        name = materializer.name
        if name in _BUILTIN_CLASSES and type_name(type(materializer)) != _BUILTIN_CLASSES[
            name
        ].replace(":", "."):
            raise MaterializerError(
                f"Materializer name {name!r} belongs to a built-in materializer; artifacts stored "
                f"under it must keep loading. Give {type(materializer).__qualname__} another name."
            )
        previous = self._lookup_name(name)
        if previous is not None and type_name(type(previous)) != type_name(type(materializer)):
            raise MaterializerError(
                f"Materializer name {name!r} is already registered by {type_name(type(previous))}; "
                f"got another one from {type_name(type(materializer))}. Names are stored with "
                "artifacts, so each must mean one format: choose a different name."
            )
        self._named[name] = materializer
        others = [m for m in self._types.get(type_, []) if m.name != name]
        self._types[type_] = [materializer, *others]

    def _lookup_name(self, name: str) -> Materializer | None:
        found = self._named.get(name)
        if found is None and self.parent is not None:
            return self.parent._lookup_name(name)
        return found

    def _user_types(self) -> list[dict[type | str, list[Materializer]]]:
        chain, reg = [], self
        while reg is not None:
            chain.append(reg._types)
            reg = reg.parent  # type: ignore[assignment]
        return chain

    def _candidates(self, cls: type) -> Iterator[Materializer]:
        spelled = type_name(cls)
        for types_ in self._user_types():
            yield from types_.get(cls, ())
            yield from types_.get(spelled, ())
            # Libraries rewrite __module__ (pandas.core.frame.DataFrame says "pandas"), so a
            # user's string also matches when it names this very class by another path.
            for key, registered in list(types_.items()):
                if isinstance(key, str) and key != spelled and _resolve(key) is cls:
                    yield from registered
        for key in (cls, spelled):
            for name in _BUILTIN_TYPES.get(key, ()):
                yield _builtin(name)

    def for_value(self, value: Any, *, source: str | None = None) -> Materializer:
        """The materializer that stores ``value`` (see :func:`materializer_for`)."""
        reasons: list[str] = []
        for cls in type(value).__mro__:
            for materializer in self._candidates(cls):
                problem = getattr(materializer, "problem", None)
                reason = problem(value) if callable(problem) else None
                if reason is None:
                    return materializer
                reasons.append(f"{materializer.name}: {reason}")
        if callable(getattr(value, "predict", None)) and not isinstance(value, type):
            return _builtin("model.pickle")  # the predict protocol: any other model
        spelled = type_name(type(value))
        origin = f" (returned by {source})" if source else ""
        why = f" Tried {'; '.join(reasons)}." if reasons else ""
        user = sorted({_describe(t) for types_ in self._user_types() for t in types_})
        extra = f", plus your registrations: {', '.join(user)}" if user else ""
        raise MaterializerError(
            f"No materializer for values of type {spelled!r}{origin}.{why} Supported types: "
            f"{_SUPPORTED}{extra}. To store it, convert it to one of these, or register a "
            f"materializer: `loopml.register_materializer({spelled!r}, MyMaterializer())` "
            "(see loopml.artifacts.Materializer)."
        )

    def named(self, name: str) -> Materializer:
        """The materializer recorded as ``name`` (see :func:`materializer_named`)."""
        if isinstance(name, str) and name in _BUILTIN_CLASSES:
            return _builtin(name)
        found = self._lookup_name(name) if isinstance(name, str) else None
        if found is not None:
            return found
        from loopml.plugins import names

        if isinstance(name, str) and name in names("materializer"):
            return _builtin(name)
        known = sorted({*_BUILTIN_CLASSES, *self._all_names()})
        raise NotFoundError(
            f"Unknown materializer {name!r}. Known materializers: {known}."
            f"{did_you_mean(str(name), known)} If it is your own, call "
            "loopml.register_materializer(...) before loading artifacts stored with it."
        )

    def _all_names(self) -> set[str]:
        found = set(self._named)
        return found | (self.parent._all_names() if self.parent is not None else set())


default_registry = MaterializerRegistry()


def register_materializer(type_: type | str, materializer: Materializer) -> None:
    """Use ``materializer`` for values of ``type_`` and its subclasses, in every client.

    Args:
        type_: A class, or its ``"module.QualName"`` so the library need not be imported.
        materializer: An instance with ``name``, ``extension``, ``save`` and ``load``.

    Raises:
        MaterializerError: ``type_`` is not a class or a dotted name, ``materializer`` is
            not a Materializer, or its name is taken by a different materializer.

    Example:
        >>> class Point:
        ...     def __init__(self, x, y): self.x, self.y = x, y
        >>> class PointMaterializer:
        ...     name, extension = "example.point", ".txt"
        ...     def save(self, value, path): path.write_text(f"{value.x},{value.y}"); return {}
        ...     def load(self, path, metadata): return Point(*map(float, path.read_text().split(",")))
        >>> register_materializer(Point, PointMaterializer())
        >>> materializer_for(Point(1, 2)).name
        'example.point'
    """
    default_registry.register(type_, materializer)


def _is_dotted(text: str) -> bool:
    parts = text.split(".")
    return len(parts) >= 2 and all(p.isidentifier() for p in parts)


def _check_materializer(obj: object) -> None:
    if isinstance(obj, type):
        raise MaterializerError(
            f"register_materializer() needs a materializer instance; got the class "
            f"{obj.__qualname__}. Pass {obj.__qualname__}() instead."
        )
    missing = [a for a in ("save", "load") if not callable(getattr(obj, a, None))]
    name, ext = getattr(obj, "name", None), getattr(obj, "extension", None)
    if not isinstance(name, str) or not name.strip():
        missing.append("name (a non-empty str)")
    if not isinstance(ext, str) or (ext and not ext.startswith(".")):
        missing.append("extension (a str such as '.csv', or '')")
    if missing:
        raise MaterializerError(
            f"register_materializer() expected a Materializer: an object with name: str, "
            f"extension: str, save(value, path) -> dict and load(path, metadata); got "
            f"{obj!r}, which lacks a valid {', '.join(missing)}."
        )


def _resolve(dotted: str) -> object | None:
    """Find the object a dotted name refers to among modules already imported (never imports)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        found: object | None = sys.modules.get(".".join(parts[:cut]))
        if found is None:
            continue
        for attr in parts[cut:]:
            found = getattr(found, attr, None)
        if found is not None:
            return found
    return None


def materializer_for(value: Any, *, source: str | None = None) -> Materializer:
    """Return the materializer that stores ``value``, chosen by its type (default registry).

    Args:
        value: Any Python value.
        source: What produced the value (e.g. ``"step 'train'"``), for the error message.

    Raises:
        MaterializerError: No registered materializer accepts the value.
    """
    return default_registry.for_value(value, source=source)


def materializer_named(name: str) -> Materializer:
    """Return the materializer recorded as ``name`` (built-in or registered).

    Raises:
        NotFoundError: No materializer has that name; the message suggests the closest.
    """
    return default_registry.named(name)


def require(module: str, purpose: str, extra: str) -> Any:
    """Import ``module`` or raise a MaterializerError that says what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MaterializerError(
            f"{purpose} needs the {module.partition('.')[0]!r} package, which is not "
            f"installed. Install it with: pip install 'loopml[{extra}]'"
        ) from exc


# --- the pickle trust boundary ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedBlob:
    """A blob the store just verified: its path, digest and file identity at that moment."""

    path: str
    digest: str
    identity: tuple[int, int, int, int, int]


_verified_blob: ContextVar[VerifiedBlob | None] = ContextVar("loopml_verified_blob", default=None)


def file_identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """Return (device, inode, size, mtime_ns, ctime_ns): changes whenever the bytes do."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@contextmanager
def loading_verified(blob: VerifiedBlob) -> Iterator[None]:
    """Mark ``blob`` as the one verified file materializers may load in this context."""
    token = _verified_blob.set(blob)
    try:
        yield
    finally:
        _verified_blob.reset(token)


def is_verified(path: Path, st: os.stat_result) -> bool:
    """True if ``path`` (whose open file has stat ``st``) is the blob the store just verified."""
    blob = _verified_blob.get()
    return blob is not None and blob.path == str(path) and blob.identity == file_identity(st)
