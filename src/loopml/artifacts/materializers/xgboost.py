"""XGBoost models → XGBoost's own UBJSON model file, never pickle.

``xgboost.Booster`` and the scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor``,
``XGBRanker``… every ``XGBModel`` subclass XGBoost defines) are written with XGBoost's
``save_model`` and read back with ``load_model``, so loading runs no code from the file.

Why UBJSON rather than JSON: both are XGBoost's documented, version-stable formats, and both
round-trip the trees exactly, but UBJSON is the default since XGBoost 2.1, keeps floats as
binary (no decimal printing and parsing), and is about half the size. A stored file loads
in any XGBoost ≥ 1.6 with ``xgboost.Booster(model_file="model.ubj")``; to read it as text,
load it and ``save_model("model.json")``.

For a wrapper, XGBoost's own file keeps only the estimator type, so loading into ``cls()``
would forget the hyperparameters. The file therefore also carries one booster attribute,
``loopml_sklearn``: the class and ``get_params()`` as JSON. Loading builds
``cls(**params)`` and calls ``load_model``, XGBoost's own way back (``classes_``,
``n_features_in_``, ``feature_names_in_`` and ``predict_proba`` come from the booster),
then puts back the few parameters ``load_model`` overwrites with what it read from the
model (``base_score``, ``booster``, ``feature_types``), so ``get_params()`` is what it was.

What stays with pickle (lookup moves on to ``sklearn.pickle``, and the artifact's
materializer name says so): an unfitted wrapper, a user's subclass (it may hold state of
its own) and a wrapper whose parameters have no exact JSON form (a callable objective or
eval_metric, callbacks).

The bytes are deterministic: the same model saves to the same bytes, and a loaded model
saves to the bytes it was loaded from.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from loopml.artifacts.materializers import require, type_name
from loopml.artifacts.materializers._models import (
    json_params,
    library_class,
    warn_if_version_differs,
)
from loopml.errors import MaterializerError

_ATTR = "loopml_sklearn"


def _xgboost() -> Any:
    return require("xgboost", "Storing XGBoost models", "models")


def _wrapper_class(spelled: Any, xgboost: Any) -> type:
    """The XGBoost wrapper class named in a stored file; only XGBoost's own classes."""
    found: object = None
    if isinstance(spelled, str) and spelled.startswith("xgboost."):
        module, _, qualname = spelled.rpartition(".")
        try:
            found = getattr(importlib.import_module(module), qualname, None)
        except ImportError:
            found = None
    if not (isinstance(found, type) and issubclass(found, xgboost.XGBModel)):
        raise MaterializerError(
            f"The stored XGBoost model names the class {spelled!r}, which is not an XGBoost "
            f"scikit-learn class in xgboost {xgboost.__version__}. Load it with "
            "xgboost.Booster(model_file=...) instead."
        )
    return found


class XGBoostMaterializer:
    """``xgboost.Booster`` and XGBoost's scikit-learn wrappers ↔ an XGBoost UBJSON model."""

    name = "xgboost.ubj"
    extension = ".ubj"

    def problem(self, value: Any) -> str | None:
        xgboost = _xgboost()
        if isinstance(value, xgboost.Booster):
            return None
        if not library_class(type(value), "xgboost"):
            return (
                f"{type_name(type(value))} is not defined by xgboost (it may hold state of its own)"
            )
        if not value.__sklearn_is_fitted__():
            return "it is not fitted: only a fitted model has a native file"
        return json_params(value.get_params(deep=False))[1]

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        xgboost = _xgboost()
        meta = {"class": type_name(type(value)), "xgboost_version": xgboost.__version__}
        if isinstance(value, xgboost.Booster):
            # save_raw is save_model into memory: a file name without ".ubj" would not
            # tell save_model which format to write.
            path.write_bytes(value.save_raw(raw_format="ubj"))
            return meta
        params, why = json_params(value.get_params(deep=False))
        if params is None:
            raise MaterializerError(
                f"Cannot store this {type(value).__qualname__} as {self.name!r}: {why}. Let "
                "loopml choose by type (store_value, materializer_for): such models go to "
                "'sklearn.pickle'."
            )
        booster = value.get_booster()
        spec = json.dumps({"class": meta["class"], "params": params}, sort_keys=True)
        # save_model picks the format from the extension: write "<path>.ubj", then rename.
        named = path.with_name(path.name + ".ubj")
        # XGBModel.save_model sets its own attribute on the booster the same way, and
        # removes it afterwards: the user's model is left as it was.
        booster.set_attr(**{_ATTR: spec})
        try:
            value.save_model(named)
            os.replace(named, path)
        finally:
            booster.set_attr(**{_ATTR: None})
            named.unlink(missing_ok=True)
        return meta

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        xgboost = require("xgboost", "Loading XGBoost models", "models")
        warn_if_version_differs("xgboost", metadata, xgboost.__version__)
        raw = bytearray(path.read_bytes())
        booster = xgboost.Booster()
        booster.load_model(raw)
        spec = booster.attr(_ATTR)
        if spec is None:
            return booster
        info = json.loads(spec)
        params: dict[str, Any] = info["params"]
        model = _wrapper_class(info["class"], xgboost)(**params)
        model.load_model(raw)
        model.get_booster().set_attr(**{_ATTR: None})
        for name, value in params.items():
            # load_model sets base_score, booster and feature_types from the model file;
            # the user's values (often None) are what get_params() and a refit should see.
            if name in vars(model):
                setattr(model, name, value)
        return model
