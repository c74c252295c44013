"""Models as pickles: scikit-learn estimators, and any other model through the predict
protocol. The one module in loopml allowed to unpickle.

Unpickling runs code, so ``load`` refuses any file except the blob the artifact store
has just verified against its digest (see ``loading_verified`` in the registry): a
model can come only from the project's own store, never from a path or a request.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import Any

from loopml.artifacts.materializers import is_verified, type_name
from loopml.artifacts.materializers._models import warn_if_version_differs
from loopml.errors import MaterializerError

_PROTOCOL = 5


class _VerifiedPickle:
    """Pickle on save; unpickle on load only the blob the store has just verified."""

    name = ""
    extension = ".pkl"
    what = "model"
    hint = "Define its class at the top level of a module, without lambdas or open handles."

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        with open(path, "wb") as f:
            try:
                pickle.dump(value, f, protocol=_PROTOCOL)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                raise MaterializerError(
                    f"Cannot pickle the {type(value).__qualname__} {self.what}: {exc}. {self.hint}"
                ) from exc
        return {"class": type_name(type(value)), **self.versions()}

    def versions(self) -> dict[str, str]:
        return {"python": sys.version.split()[0]}

    def check_versions(self, metadata: dict[str, Any]) -> None:
        """Warn when the library that made it differs from the one installed here."""

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        with open(path, "rb") as f:
            if not is_verified(path, os.fstat(f.fileno())):
                raise MaterializerError(
                    f"Refusing to unpickle {path}: models load only from blobs the artifact "
                    "store has just verified, because unpickling runs code. Load it with "
                    f"ArtifactStore.get_value(digest, {self.name!r})."
                )
            self.check_versions(metadata)
            return pickle.load(f)  # noqa: S301 - verified blob from our own store


class SklearnPickleMaterializer(_VerifiedPickle):
    """``sklearn.base.BaseEstimator`` (fitted or not, pipelines included) ↔ a pickle."""

    name = "sklearn.pickle"
    what = "estimator"
    hint = (
        "Lambdas and locally defined functions cannot be pickled; use module-level functions "
        "in FunctionTransformer and friends."
    )

    def versions(self) -> dict[str, str]:
        import sklearn

        return {"sklearn_version": sklearn.__version__}

    def check_versions(self, metadata: dict[str, Any]) -> None:
        import sklearn

        warn_if_version_differs("sklearn", metadata, sklearn.__version__)


class PredictProtocolMaterializer(_VerifiedPickle):
    """Any other model: an object with a ``predict(X)`` method (and, for classifiers,
    ``predict_proba(X)`` and ``classes_``) ↔ a pickle, loaded under the same rule as
    scikit-learn's — only from a blob the store has just verified.

    This is the documented protocol for models from libraries loopml has no format for
    (statsmodels results, a wrapper class of your own): its class must be importable by
    the process that loads it (defined in a module, not in ``__main__`` of a script).
    """

    name = "model.pickle"


def load_trusted_pickle(path: Path) -> Any:
    """Unpickle a model file from outside the store, which the user vouched for
    (``loopml register --file … --trust``): the one unverified load, kept here beside the
    verified ones so every unpickling in loopml is in this module."""
    import joblib  # reads plain pickles too

    return joblib.load(path)  # noqa: S301 - the user's own file, trusted explicitly
