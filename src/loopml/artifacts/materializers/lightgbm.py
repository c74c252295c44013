"""LightGBM models → LightGBM's own text model, never pickle.

``lightgbm.Booster`` is stored as ``model_to_string()`` (the text ``save_model`` writes,
``name = "lightgbm.txt"``) and loaded with ``Booster(model_str=...)``. As in LightGBM's own
``save_model``, a booster trained with early stopping keeps the trees up to its best
iteration, which is what its ``predict()`` uses by default; ``best_iteration`` is
recorded in the metadata and set again on load.

LightGBM's scikit-learn wrappers (``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``)
have no native file of their own in LightGBM 4.7: ``save_model`` exists only on the
booster, and the wrapper state a prediction needs (``classes_`` and the label encoder,
the objective, the feature counts) lives in private attributes. So ``lightgbm.json`` is
one JSON document holding the booster's model text, ``get_params()`` and those fitted
attributes, and loading rebuilds ``cls(**params)`` around ``Booster(model_str=...)``.
Class labels keep their values and dtype (strings, ints, bools, floats). The fitted
attributes are LightGBM's private ones as of 4.7, named in ``_FITTED``; a wrapper with an
attribute outside that list (another LightGBM version, a Dask wrapper) is not stored
natively, so nothing is silently dropped. The model text is ``doc["booster"]``, ready for
``lightgbm.Booster(model_str=...)`` outside loopml.

What stays with pickle (lookup moves on to ``sklearn.pickle``, and the artifact's
materializer name says so): an unfitted wrapper, a user's subclass, a wrapper with a
callable objective or parameters without an exact JSON form, and class labels that JSON
cannot hold exactly (dates, objects).

Bytes are deterministic: the same model saves to the same bytes.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from loopml.artifacts.materializers import require, type_name
from loopml.artifacts.materializers._models import (
    json_params,
    library_class,
    warn_if_version_differs,
)
from loopml.errors import MaterializerError

_FORMAT = 1
# Every private attribute LGBMModel and its subclasses set in LightGBM 4.7, mapped to
# whether the file keeps it. The rest are rebuilt: _Booster from the text, _le,
# _class_map and _n_classes from the classes; _class_weight and _eval_at are recomputed by
# the next fit and unused by predict.
_FITTED = {
    "_Booster": False,
    "_le": False,
    "_classes": False,
    "_n_classes": False,
    "_class_map": False,
    "_class_weight": False,
    "_eval_at": False,
    "_other_params": False,
    "fitted_": False,
    "_n_features": True,
    "_n_features_in": True,
    "_fitted_with_feature_names": True,
    "_objective": True,
    "_best_iteration": True,
    "_best_score": True,
    "_evals_result": True,
}


def _lightgbm(purpose: str = "Storing LightGBM models") -> Any:
    return require("lightgbm", purpose, "models")


def _classes(classes: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Class labels as ``{"dtype", "values"}``, if they read back equal and of the same dtype."""
    import numpy as np

    encoded = {"dtype": str(classes.dtype), "values": classes.tolist()}
    plain, why = json_params(encoded, kind="class labels")
    if plain is None:
        return None, why
    back = np.array(plain["values"], dtype=plain["dtype"])
    if back.dtype != classes.dtype or not np.array_equal(back, classes):
        return None, f"its class labels ({classes.dtype}) do not survive JSON exactly"
    return plain, None


def _state(model: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Everything but the booster text a wrapper needs to be rebuilt, or why it cannot be."""
    params, why = json_params(model.get_params(deep=False))
    if params is None:
        return None, why
    unknown = sorted(set(vars(model)) - set(params) - set(_FITTED))
    if unknown:
        return None, (
            f"it has fitted attributes loopml does not know how to rebuild: {unknown} "
            "(from another LightGBM version or a subclass)"
        )
    fitted, why = json_params(
        {k.lstrip("_"): v for k, v in vars(model).items() if _FITTED.get(k)},
        kind="fitted attribute",
    )
    if fitted is None:
        return None, why
    classes = getattr(model, "_classes", None)
    if classes is not None:
        fitted["classes"], why = _classes(classes)
        if why:
            return None, why
    return {"format": _FORMAT, "class": type_name(type(model)), "params": params, **fitted}, None


def _wrapper_class(spelled: Any, lightgbm: Any) -> type:
    """The LightGBM wrapper class named in a stored file; only LightGBM's own classes."""
    found: object = None
    if isinstance(spelled, str) and spelled.startswith("lightgbm."):
        module, _, qualname = spelled.rpartition(".")
        try:
            found = getattr(importlib.import_module(module), qualname, None)
        except ImportError:
            found = None
    if not (isinstance(found, type) and issubclass(found, lightgbm.LGBMModel)):
        raise MaterializerError(
            f"The stored LightGBM model names the class {spelled!r}, which is not a LightGBM "
            f"scikit-learn class in lightgbm {lightgbm.__version__}. Its booster loads with "
            "lightgbm.Booster(model_str=json.load(f)['booster'])."
        )
    return found


class LightGBMBoosterMaterializer:
    """``lightgbm.Booster`` ↔ LightGBM's text model."""

    name = "lightgbm.txt"
    extension = ".txt"

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        lightgbm = _lightgbm()
        path.write_text(value.model_to_string(), encoding="utf-8")
        return {
            "class": type_name(type(value)),
            "lightgbm_version": lightgbm.__version__,
            "best_iteration": int(value.best_iteration),
        }

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        lightgbm = _lightgbm("Loading LightGBM models")
        warn_if_version_differs("lightgbm", metadata, lightgbm.__version__)
        booster = lightgbm.Booster(model_str=path.read_text(encoding="utf-8"))
        best = metadata.get("best_iteration")
        if isinstance(best, int) and best > 0:
            booster.best_iteration = best
        return booster


class LightGBMSklearnMaterializer:
    """LightGBM's scikit-learn wrappers ↔ JSON: the booster's text plus the wrapper's state."""

    name = "lightgbm.json"
    extension = ".json"

    def problem(self, value: Any) -> str | None:
        _lightgbm()
        if not library_class(type(value), "lightgbm"):
            return f"{type_name(type(value))} is not defined by lightgbm (it may hold state of its own)"
        if not value.__sklearn_is_fitted__():
            return "it is not fitted: only a fitted model has a native file"
        return _state(value)[1]

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        lightgbm = _lightgbm()
        state, why = _state(value)
        if state is None:
            raise MaterializerError(
                f"Cannot store this {type(value).__qualname__} as {self.name!r}: {why}. Let "
                "loopml choose by type (store_value, materializer_for): such models go to "
                "'sklearn.pickle'."
            )
        booster = value.booster_
        doc = {**state, "booster": booster.model_to_string()}
        path.write_text(json.dumps(doc, sort_keys=True, ensure_ascii=False), encoding="utf-8")
        return {
            "class": state["class"],
            "lightgbm_version": lightgbm.__version__,
            "best_iteration": int(booster.best_iteration),
        }

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        lightgbm = _lightgbm("Loading LightGBM models")
        warn_if_version_differs("lightgbm", metadata, lightgbm.__version__)
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != _FORMAT:
            raise MaterializerError(
                f"{path} holds LightGBM wrapper format {doc.get('format')!r}; this loopml reads "
                f"format {_FORMAT}. Upgrade loopml to load it."
            )
        model = _wrapper_class(doc["class"], lightgbm)(**doc["params"])
        booster = lightgbm.Booster(model_str=doc["booster"])
        if doc["best_iteration"] > 0:
            booster.best_iteration = doc["best_iteration"]
        model._Booster = booster
        for name, keep in _FITTED.items():
            if keep:
                setattr(model, name, doc[name.lstrip("_")])
        if "classes" in doc:
            _set_classes(model, doc["classes"])
        model.fitted_ = True
        return model


def _set_classes(model: Any, encoded: dict[str, Any]) -> None:
    """What ``LGBMClassifier.fit`` derives from the labels, from the stored labels."""
    import numpy as np
    from sklearn.preprocessing import LabelEncoder

    encoder = LabelEncoder()
    encoder.classes_ = np.array(encoded["values"], dtype=encoded["dtype"])
    model._le = encoder
    model._classes = encoder.classes_
    model._n_classes = len(encoder.classes_)
    model._class_map = dict(zip(encoder.classes_, encoder.transform(encoder.classes_), strict=True))
