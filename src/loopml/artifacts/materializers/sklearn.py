"""scikit-learn estimators → pickle. The one module in loopml allowed to unpickle.

Unpickling runs code, so ``load`` refuses any file except the blob the artifact store
has just verified against its digest (see ``loading_verified`` in the registry): a
model can come only from the project's own store, never from a path or a request.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from loopml.artifacts.materializers import is_verified, type_name
from loopml.artifacts.materializers._models import warn_if_version_differs
from loopml.errors import MaterializerError

_PROTOCOL = 5


class SklearnPickleMaterializer:
    """``sklearn.base.BaseEstimator`` (fitted or not, pipelines included) ↔ a pickle."""

    name = "sklearn.pickle"
    extension = ".pkl"

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        import sklearn

        with open(path, "wb") as f:
            try:
                pickle.dump(value, f, protocol=_PROTOCOL)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                raise MaterializerError(
                    f"Cannot pickle the {type(value).__qualname__} estimator: {exc}. Lambdas "
                    "and locally defined functions cannot be pickled; use module-level "
                    "functions in FunctionTransformer and friends."
                ) from exc
        return {"class": type_name(type(value)), "sklearn_version": sklearn.__version__}

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        import sklearn

        with open(path, "rb") as f:
            if not is_verified(path, os.fstat(f.fileno())):
                raise MaterializerError(
                    f"Refusing to unpickle {path}: scikit-learn models load only from blobs the "
                    "artifact store has just verified, because unpickling runs code. Load it "
                    "with ArtifactStore.get_value(digest, 'sklearn.pickle')."
                )
            warn_if_version_differs("sklearn", metadata, sklearn.__version__)
            return pickle.load(f)  # noqa: S301 - verified blob from our own store


class PredictProtocolMaterializer:
    """Any other model: an object with a ``predict(X)`` method (and, for classifiers,
    ``predict_proba(X)`` and ``classes_``) ↔ a pickle, loaded under the same rule as
    scikit-learn's — only from a blob the store has just verified.

    This is the documented protocol for models from libraries loopml has no format for
    (statsmodels results, a wrapper class of your own): its class must be importable by
    the process that loads it (defined in a module, not in ``__main__`` of a script).
    """

    name = "model.pickle"
    extension = ".pkl"

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        import sys

        with open(path, "wb") as f:
            try:
                pickle.dump(value, f, protocol=_PROTOCOL)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                raise MaterializerError(
                    f"Cannot pickle the {type(value).__qualname__} model: {exc}. Define its "
                    "class at the top level of a module, without lambdas or open handles."
                ) from exc
        return {"class": type_name(type(value)), "python": sys.version.split()[0]}

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        with open(path, "rb") as f:
            if not is_verified(path, os.fstat(f.fileno())):
                raise MaterializerError(
                    f"Refusing to unpickle {path}: models load only from blobs the artifact "
                    "store has just verified, because unpickling runs code."
                )
            return pickle.load(f)  # noqa: S301 - verified blob from our own store
