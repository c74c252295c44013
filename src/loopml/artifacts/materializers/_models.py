"""What the model materializers (scikit-learn, XGBoost, LightGBM) share.

Each records the version of its library in the artifact's metadata (``<library>_version``)
and warns once on load when the installed version differs: a model format written by one
version is read by another, and the model may load differently, predict differently or
fail later. Hyperparameters go to the model files as JSON, so the scikit-learn wrappers of
XGBoost and LightGBM come back with the same ``get_params()``; :func:`json_params` says
whether they can, and the materializers leave the model to pickle when they cannot.
"""

from __future__ import annotations

import warnings
from typing import Any

from loopml.errors import LibraryVersionWarning


def warn_if_version_differs(library: str, metadata: dict[str, Any], installed: str) -> None:
    """Warn (:class:`LibraryVersionWarning`) when ``metadata`` names another ``library`` version.

    Nothing happens when the metadata records no version (artifacts stored before loopml
    recorded it): there is nothing to compare.
    """
    stored = metadata.get(f"{library}_version")
    if not isinstance(stored, str) or stored == installed:
        return
    warnings.warn(
        f"This model was stored with {library} {stored} and is being loaded with {library} "
        f"{installed}. A model may load differently, predict differently or fail across "
        f"{library} versions; check its predictions, or install the version it was stored "
        f"with: pip install '{library}=={stored}'.",
        LibraryVersionWarning,
        stacklevel=3,
    )


class _NotJson(Exception):
    """A value has no exact JSON form."""


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value
    item = getattr(value, "item", None)
    if type(value).__module__ == "numpy" and callable(item):
        return _plain(item())  # numpy scalars: the same number as a Python int/float/bool
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v) for k, v in value.items()}
    raise _NotJson(f"{type(value).__qualname__} {value!r}")


def json_params(
    params: dict[str, Any], *, kind: str = "parameter"
) -> tuple[dict[str, Any] | None, str | None]:
    """``params`` as plain JSON values, or ``(None, reason)`` when one has no exact JSON form.

    Exact means it reads back equal and of the same kind: a callable, an object, a tuple
    (it would come back a list) or a dict with non-str keys (JSON turns them into str) has
    none. numpy scalars become the equal Python number. NaN and infinities are kept
    (Python's json writes and reads them).
    """
    out: dict[str, Any] = {}
    for name, value in params.items():
        try:
            out[name] = _plain(value)
        except _NotJson as exc:
            return None, f"its {kind} {name!r} has no exact JSON form ({exc})"
    return out, None


def library_class(cls: type, library: str) -> bool:
    """True if ``cls`` is defined by ``library`` itself (not a user's subclass of it)."""
    return cls.__module__ == library or cls.__module__.startswith(library + ".")
