"""Registering model versions, and loading one as a predictor.

``register("churn", run="train#3", output="train")`` makes a step output of a run the next
version of ``churn`` (the same artifact again is the same version). The version records
where it came from (run, step output), the dataset versions the run read, the run's
metrics, the library and its version, and the input schema inferred from the training data:
the frame given as ``X``, or else the columns the model was fitted on (``feature_names_in_``)
read from the dataset versions its run read.

``load("churn@production")`` returns a ``Predictor``: ``predict``/``predict_proba`` check the
input against that schema first, so a missing column, a wrong type or an unseen category is
an error naming the column rather than a silent wrong prediction.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError, NotFoundError
from loopml.store.models import ModelVersion, check_model_name

if TYPE_CHECKING:
    from loopml.tracking.client import Client

LIBRARIES = ("sklearn", "xgboost", "lightgbm", "statsmodels")


def _client(client: Client | None) -> Client:
    from loopml.tracking.client import given_or_default

    return given_or_default(client)


def who() -> str:
    """``user@host``: who registered a version or moved an alias, for the audit history."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def library_of(model: Any) -> tuple[str, str]:
    """(library, version) of a model object: ``("sklearn", "1.5.2")``, or ``("python", …)``."""
    import importlib.metadata
    import sys

    top = type(model).__module__.partition(".")[0]
    if top not in LIBRARIES:
        return "python", sys.version.split()[0]
    dist = {"sklearn": "scikit-learn"}.get(top, top)
    for name in (dist, f"{dist}-cpu"):
        try:
            return top, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return top, str(getattr(sys.modules.get(top), "__version__", "unknown"))


def register(
    name: str,
    model: Any = None,
    *,
    run: str | None = None,
    output: str | None = None,
    X: Any = None,
    path: str | os.PathLike[str] | None = None,
    trust: bool = False,
    description: str = "",
    tags: dict[str, str] | None = None,
    client: Client | None = None,
) -> tuple[ModelVersion, bool]:
    """Register a model object, the step output ``output`` of run ``run``, or a model file
    made elsewhere (``path``), as the next version of ``name``; returns the version and
    whether it is new.

    Inside a run, a model object is linked to that run (its metrics, the datasets it read).
    A file is read in its library's own format (XGBoost ``.ubj``/``.json``, LightGBM
    ``.txt``); a pickle (``.pkl``, ``.pickle``, ``.joblib``) runs code when it is read, so
    it is refused unless ``trust=True`` says you made it. Once registered, every version
    loads only from the store, verified against its digest.

    Raises:
        InvalidParameterError: a bad name; not exactly one of ``model``, ``run``, ``path``;
            a pickle without ``trust``.
        NotFoundError: the run, its output or the file does not exist.
    """
    check_model_name(name)
    c = _client(client)
    run_id: str | None
    if sum(x is not None for x in (model, run, path)) != 1:
        raise InvalidParameterError(
            "register: give one of a model object, run= and output= (a step output of a "
            "run, e.g. run='train#3', output='train'), or path= (a model file)."
        )
    if path is not None:
        model = read_model_file(path, trust=trust)
    if run is not None:
        if not output:
            raise InvalidParameterError(
                f"register: which output of run {run!r}? Pass output=, e.g. output='train' "
                "(`loopml runs show RUN` lists a run's outputs)."
            )
        record, digest = c.run_output(run, output)
        known = c.open().metadata.models.find(name, digest)
        if known is not None:  # registered before: nothing to load or infer
            return known, False
        run_id, source = record.id, f"{record.name}:{output}"
        obj = c.load_artifact(digest)
    else:
        from loopml.tracking.context import active_run

        obj = model
        digest = c.store_value(model).digest
        active = active_run()
        if active is not None:
            active.flush()  # the metrics logged so far belong to the version
        run_id = active.id if active is not None else None
        source = f"{active.label}" if active is not None else "python"
        if path is not None:
            source = f"file {os.fspath(path)}"
    metrics: dict[str, float] = {}
    datasets: list[Any] = []
    if run_id is not None:
        record = c.run_record(run_id)
        metrics = {k: float(v) for k, v in record.metrics.items()}
        datasets = [v for v, _ in c.datasets_read(run_id)]
    input_schema, output_schema = _schemas(c, obj, X, datasets)
    library, library_version = library_of(obj)
    version = ModelVersion(
        name=name,
        number=0,
        digest=digest,
        run_id=run_id,
        source=source,
        library=library,
        library_version=library_version,
        input_schema=input_schema,
        output_schema=output_schema,
        metrics=metrics,
        description=description,
        tags={str(k): str(v) for k, v in (tags or {}).items()},
        created_by=who(),
        created_at=time.time(),
    )
    return c.open().metadata.models.register(
        version, [(d.name, d.number) for d in {d.label: d for d in datasets}.values()]
    )


PICKLES = (".pkl", ".pickle", ".joblib")


def read_model_file(path: str | os.PathLike[str], *, trust: bool = False) -> Any:
    """A model from a file made outside the store (see ``register``)."""
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        raise NotFoundError(f"Model file {str(path)!r} does not exist (or is not a file).")
    suffix = file.suffix.lower()
    if suffix in PICKLES:
        if not trust:
            raise InvalidParameterError(
                f"{file.name} is a pickle: reading it runs whatever code it holds. Register it "
                "only if you made it, with --trust (trust=True); or save the model in its "
                "library's own format (XGBoost .ubj, LightGBM .txt) and register that."
            )
        from loopml.artifacts.materializers.sklearn import load_trusted_pickle

        return load_trusted_pickle(file)
    try:
        if suffix in (".ubj", ".json"):
            import xgboost

            return xgboost.Booster(model_file=str(file))
        if suffix == ".txt":
            import lightgbm

            return lightgbm.Booster(model_file=str(file))
    except Exception as exc:  # the library's own parser: say which file and why
        raise InvalidParameterError(
            f"{file.name} could not be read as a {suffix} model: {type(exc).__name__}: {exc}."
        ) from exc
    raise InvalidParameterError(
        f"{file.name}: unknown model format {suffix or '(no suffix)'!r}. Supported: XGBoost "
        f".ubj/.json, LightGBM .txt, and pickles ({', '.join(PICKLES)}) with --trust."
    )


def register_step_output(name: str, *, run: str, output: str, client: Client) -> ModelVersion:
    """The runner's hook for ``@step(register=NAME)``: the step's output, as a version."""
    version, _ = register(name, run=run, output=output, client=client)
    return version


def _schemas(
    c: Client, model: Any, X: Any, datasets: list[Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The input schema from ``X``, or from the dataset columns the model was fitted on."""
    if X is None:
        X = _training_columns(c, model, datasets)
    outputs = _outputs(model)
    if X is None:
        return None, outputs
    from loopml.registry.schema import infer_schema

    return infer_schema(X).to_dict(), outputs


def _training_columns(c: Client, model: Any, datasets: list[Any]) -> Any:
    """The columns ``model.feature_names_in_`` names, from the first dataset that has them."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        names = getattr(model, "feature_names", None)  # xgboost.Booster
    if names is None:
        return None
    wanted = [str(n) for n in list(names)]
    from loopml.data.datasets import TABULAR, Dataset

    for version in datasets:
        if version.format not in TABULAR:
            continue
        frame = Dataset(version.label).frame(c)
        if all(n in frame.columns for n in wanted):
            return frame[wanted].head(100_000)
    return None


def _outputs(model: Any) -> dict[str, Any]:
    classes = getattr(model, "classes_", None)
    if classes is not None:
        from loopml.evaluation.suites import _jsonable

        return {
            "kind": "probabilities" if hasattr(model, "predict_proba") else "labels",
            "classes": [_jsonable(v) for v in list(classes)],
        }
    return {"kind": "values"}


@dataclass
class Predictor:
    """A registered model version, loaded: its input is checked against its schema."""

    version: ModelVersion
    model: Any

    @property
    def schema(self) -> Any:
        """The input schema (``loopml.registry.schema.ModelSchema``), or None when unknown."""
        if self.version.input_schema is None:
            return None
        from loopml.registry.schema import ModelSchema

        return ModelSchema.from_dict(self.version.input_schema)

    def _checked(self, X: Any) -> Any:
        schema = self.schema
        if schema is None:
            return X
        from loopml.registry.schema import check_input

        return check_input(X, schema)

    def predict(self, X: Any) -> Any:
        """The model's predictions for ``X`` (a DataFrame, a dict or a list of dicts)."""
        checked = self._checked(X)
        kind = type(self.model)
        if kind.__name__ == "Booster" and kind.__module__.startswith("xgboost"):
            import xgboost  # its native booster predicts from a DMatrix only

            return self.model.predict(xgboost.DMatrix(checked))
        return self.model.predict(checked)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities for ``X``, columns in ``self.classes`` order."""
        if not hasattr(self.model, "predict_proba"):
            raise InvalidParameterError(
                f"{self.version.label} ({type(self.model).__name__}) has no predict_proba."
            )
        return self.model.predict_proba(self._checked(X))

    @property
    def classes(self) -> list[Any] | None:
        return (self.version.output_schema or {}).get("classes")

    def __repr__(self) -> str:
        aliases = "".join(f" @{a}" for a in self.version.aliases)
        return f"<Predictor {self.version.label}{aliases} {type(self.model).__name__}>"


def load(ref: str, *, client: Client | None = None) -> Any:
    """A registered version (``"churn@production"``, ``"churn@4"``, ``"churn"``) as a
    ``Predictor``, or any stored artifact by digest (verified on read). A model made with
    another version of its library than the one installed here warns once (the model
    formats record it).

    Example:
        >>> import loopml
        >>> model = loopml.load("churn@production")   # doctest: +SKIP
        >>> model.predict(frame)                       # doctest: +SKIP
    """
    c = _client(client)
    if isinstance(ref, str) and "@" not in ref and _looks_like_digest(ref):
        return c.load_artifact(ref)
    version = c.model_version(ref)
    return Predictor(version, c.load_artifact(version.digest))


def _looks_like_digest(ref: str) -> bool:
    return len(ref) >= 6 and all(ch in "0123456789abcdef" for ch in ref.lower())
