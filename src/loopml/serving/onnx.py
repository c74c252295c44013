"""ONNX: converting scikit-learn, XGBoost and LightGBM models, running them, checking parity.

``convert(model, schema)`` returns the bytes of an ONNX model; :class:`OnnxRunner` runs
them with ONNX Runtime; :func:`parity` says whether the two agree on sample rows, and
:func:`quantize_int8` makes a dynamically quantized copy.

How the inputs are laid out (decided once, in ``convert``, and written into the model's
metadata so that the runner needs nothing but the bytes):

- XGBoost and LightGBM take one float tensor ``[N, F]`` named ``input``, in the order of
  the model's own feature names: their converters accept nothing else, and one tensor is
  also the fastest feed. Every column must be numeric (a categorical split has no
  converter).
- A scikit-learn model whose first step is a ``ColumnTransformer`` (it picks columns by
  name), or that has a text or category column, takes one input per column, named after
  it: numbers (integers, floats, booleans) as float tensors ``[N, 1]``, text and category
  as string tensors ``[N, 1]``. Any other scikit-learn model takes one float tensor
  ``[N, F]``.

Numbers go in as float32, as the tree and linear operators of ONNX compute in float32.
So the parity tolerance is on the difference *scaled by the native value*,
``|onnx - native| / max(1, |native|)``: a regressor predicting values around 1,000 differs
from scikit-learn by about 1e-4 in absolute terms while agreeing to 7 significant digits.
The absolute figure is reported as well. An integer beyond 2**24 loses precision in
float32; a model that relies on such values should stay native.

onnx, onnxruntime, skl2onnx and onnxmltools are imported inside the functions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from loopml.registry.schema import ModelSchema
    from loopml.store.models import ModelVersion
    from loopml.tracking.client import Client

__all__ = ["OnnxRunner", "Parity", "convert", "parity", "quantize_int8", "sample_rows"]

NUMBERS = ("integer", "float", "boolean")
TEXT = ("string", "category")
_META = "loopml"  # the metadata key holding the runner's plan (JSON)
# Native booster objectives whose ``predict`` the converters reproduce: the scores of
# binary:logistic are P(class 1), multi:softprob the n×k probabilities.
_XGB_OBJECTIVES = {
    "binary:logistic": "binary",
    "multi:softprob": "multi",
    "multi:softmax": "labels",
}
_LGB_OBJECTIVES = {"binary": "binary", "multiclass": "multi", "softmax": "multi"}


# -- converting -----------------------------------------------------------------------------


def convert(model: Any, schema: ModelSchema) -> bytes:
    """An ONNX model of ``model``, whose inputs are ``schema``'s columns (see the module doc).

    Args:
        model: a fitted scikit-learn estimator or pipeline, an ``XGBClassifier``,
            ``XGBRegressor`` or native ``xgboost.Booster``, an ``LGBMClassifier``,
            ``LGBMRegressor`` or ``lightgbm.Booster``.
        schema: the model's input schema (``loopml.registry.schema.ModelSchema``).

    Returns:
        The serialized ONNX model; its metadata holds the input plan :class:`OnnxRunner`
        reads.

    Raises:
        InvalidParameterError: the model has no converter (its type and why are named),
            or a column cannot be fed to it.

    Example:
        >>> import pandas as pd
        >>> from sklearn.linear_model import LinearRegression
        >>> from loopml.registry.schema import infer_schema
        >>> X = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
        >>> model = LinearRegression().fit(X, [2.0, 4.0, 6.0])
        >>> runner = OnnxRunner(convert(model, infer_schema(X)))
        >>> runner.predict_frame(pd.DataFrame({"x": [4.0]}))[0].round(3).tolist()
        [8.0]
    """
    import warnings

    library = type(model).__module__.partition(".")[0]
    datetimes = [c.name for c in schema.inputs if c.kind == "datetime"]
    if datetimes:
        raise _no_converter(
            model,
            f"the datetime column(s) {datetimes} have no ONNX input type; convert them "
            "to numbers (e.g. epoch seconds) before training",
        )
    convert_library = {"sklearn": _sklearn, "xgboost": _xgboost, "lightgbm": _lightgbm}.get(library)
    if convert_library is None:
        raise _no_converter(
            model,
            f"no converter for {type(model).__module__}.{type(model).__qualname__} "
            "(supported: scikit-learn, XGBoost, LightGBM)",
        )
    # The converters warn about their own internals (deprecated numpy/onnx calls): nothing
    # the user can act on, so they are silenced here and only here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            onx, plan = convert_library(model, schema)
        except InvalidParameterError:
            raise
        except Exception as exc:  # the converters' own errors: name the model and why
            raise _no_converter(model, _first_line(exc)) from exc
    plan["columns"] = [c.to_dict() for c in schema.inputs]
    entry = onx.metadata_props.add()
    entry.key, entry.value = _META, json.dumps(plan)
    data: bytes = onx.SerializeToString()
    return data


def _no_converter(model: Any, why: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"{_describe(model)} cannot be converted to ONNX: {why}. It can still be served "
        "natively (loopml serve runs the model itself)."
    )


def _describe(model: Any) -> str:
    kind = type(model)
    top = kind.__module__.partition(".")[0]
    return f"{top}.{kind.__name__}" if top in ("xgboost", "lightgbm") else kind.__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _numeric_only(model: Any, schema: ModelSchema, names: list[str]) -> None:
    kinds = {c.name: c.kind for c in schema.inputs}
    missing = [n for n in names if n not in kinds]
    if missing:
        raise InvalidParameterError(
            f"{_describe(model)} reads the features {missing}, which its schema does not "
            f"have (schema columns: {list(kinds)}). Register the version with X= the frame "
            "it was trained on."
        )
    other = [n for n in names if kinds[n] not in NUMBERS]
    if other:
        raise _no_converter(
            model,
            f"its columns {other} are not numbers (the ONNX converters of "
            f"{type(model).__module__.partition('.')[0]} take numeric features only)",
        )


def _matrix_plan(names: list[str]) -> dict[str, Any]:
    return {"feeds": [{"name": "input", "columns": names, "type": "float"}]}


def _sklearn(model: Any, schema: ModelSchema) -> tuple[Any, dict[str, Any]]:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.base import is_classifier

    names = [str(n) for n in getattr(model, "feature_names_in_", schema.names)]
    kinds = {c.name: c for c in schema.inputs}
    per_column = _selects_by_name(model) or any(
        kinds[n].kind not in NUMBERS for n in names if n in kinds
    )
    if per_column:
        feeds = []
        for spec in [kinds[n] for n in names if n in kinds] or list(schema.inputs):
            text = spec.kind in TEXT and not _numeric_categories(spec.categories)
            feeds.append(
                {"name": spec.name, "columns": [spec.name], "type": "string" if text else "float"}
            )
        plan: dict[str, Any] = {"feeds": feeds}
        types: list[Any] = [
            (f["name"], (StringTensorType if f["type"] == "string" else FloatTensorType)([None, 1]))
            for f in feeds
        ]
    else:
        _numeric_only(model, schema, names)
        plan = _matrix_plan(names)
        types = [("input", FloatTensorType([None, len(names)]))]
    classifier = bool(is_classifier(model))
    options = {"zipmap": False} if classifier else None
    onx = to_onnx(model, initial_types=types, options=options)
    plan.update(_outputs_plan(model, classifier=classifier))
    return onx, plan


def _selects_by_name(model: Any) -> bool:
    """Whether the model starts with a ColumnTransformer, which picks columns by name."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    while isinstance(model, Pipeline):
        model = model.steps[0][1]
    return isinstance(model, ColumnTransformer)


def _numeric_categories(categories: Any) -> bool:
    return bool(categories) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in categories
    )


def _outputs_plan(model: Any, *, classifier: bool, scores: str | None = None) -> dict[str, Any]:
    import numpy as np

    if not classifier:
        return {"task": "regressor"}
    classes = np.asarray(model.classes_)
    return {
        "task": "classifier" if scores is None else "scores",
        "scores": scores,
        "classes": [v.item() if hasattr(v, "item") else v for v in classes.tolist()],
        "label_dtype": classes.dtype.str if classes.dtype.kind != "O" else "object",
    }


def _xgboost(model: Any, schema: ModelSchema) -> tuple[Any, dict[str, Any]]:
    import xgboost
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = model if isinstance(model, xgboost.Booster) else model.get_booster()
    names = list(booster.feature_names or schema.names)
    _numeric_only(model, schema, names)
    # The converter reads features as f0, f1, …: a copy without names keeps the order.
    unnamed = booster.copy()
    unnamed.feature_names = None
    unnamed.feature_types = None
    types = [("input", FloatTensorType([None, len(names)]))]
    plan = _matrix_plan(names)
    if isinstance(model, xgboost.Booster):
        objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
        if objective.startswith("reg:") or objective in ("count:poisson",):
            plan["task"] = "regressor"
        elif objective in _XGB_OBJECTIVES:
            k = int(
                json.loads(booster.save_config())["learner"]["learner_model_param"].get(
                    "num_class", "0"
                )
                or 0
            )
            plan.update(
                task="scores",
                scores=_XGB_OBJECTIVES[objective],
                classes=list(range(max(k, 2))),
                label_dtype="<f4",
            )
        else:
            raise _no_converter(
                model,
                f"the objective {objective!r} has no converter (supported: reg:*, "
                f"count:poisson, {', '.join(_XGB_OBJECTIVES)})",
            )
        return convert_xgboost(unnamed, initial_types=types), plan
    copy = _with_booster(model, unnamed)
    plan.update(_outputs_plan(model, classifier=hasattr(model, "classes_")))
    return convert_xgboost(copy, initial_types=types), plan


def _with_booster(model: Any, booster: Any) -> Any:
    import copy

    twin = copy.copy(model)
    twin._Booster = booster
    return twin


def _lightgbm(model: Any, schema: ModelSchema) -> tuple[Any, dict[str, Any]]:
    import lightgbm
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = model if isinstance(model, lightgbm.Booster) else model.booster_
    names = [str(n) for n in booster.feature_name()]
    if names and all(n.startswith("Column_") for n in names):
        names = schema.names  # fitted on an array: the schema's order is the order
    _numeric_only(model, schema, names)
    types = [("input", FloatTensorType([None, len(names)]))]
    plan = _matrix_plan(names)
    if isinstance(model, lightgbm.Booster):
        objective = str(booster.dump_model().get("objective", "")).split()[0]
        if objective in _LGB_OBJECTIVES:
            k = int(booster.dump_model().get("num_class", 1))
            plan.update(
                task="scores",
                scores=_LGB_OBJECTIVES[objective],
                classes=list(range(max(k, 2))),
                label_dtype="<f8",
            )
            return convert_lightgbm(model, initial_types=types, zipmap=False), plan
        plan["task"] = "regressor"
        return convert_lightgbm(model, initial_types=types), plan
    classifier = hasattr(model, "classes_")
    plan.update(_outputs_plan(model, classifier=classifier))
    if classifier:
        return convert_lightgbm(model, initial_types=types, zipmap=False), plan
    return convert_lightgbm(model, initial_types=types), plan


# -- running --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Feed:
    """One ONNX input: its name, the columns that fill it, its dtype."""

    name: str
    columns: tuple[str, ...]
    text: bool


class OnnxRunner:
    """An ONNX model made ready to predict: one session, its inputs planned once.

    Args:
        onnx_bytes: a model made by :func:`convert` (its metadata holds the input plan).
        threads: threads inside one operator (ONNX Runtime's ``intra_op_num_threads``).
            The default, 1, suits serving on a small machine: a request is small, and the
            server's other workers use the other cores.

    Raises:
        InvalidParameterError: the bytes are not a model made by :func:`convert`.
    """

    def __init__(self, onnx_bytes: bytes, *, threads: int = 1) -> None:
        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # its shape notes on LightGBM labels are noise
        try:
            self.session = ort.InferenceSession(
                onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise InvalidParameterError(
                f"These bytes are not an ONNX model ONNX Runtime can load: {_first_line(exc)}."
            ) from exc
        raw = self.session.get_modelmeta().custom_metadata_map.get(_META)
        if raw is None:
            raise InvalidParameterError(
                "This ONNX model was not made by loopml.serving.onnx.convert: it has no input "
                "plan. Convert the model with convert(model, schema)."
            )
        plan = json.loads(raw)
        self.plan: dict[str, Any] = plan
        self.columns: list[str] = [c["name"] for c in plan["columns"]]
        self.task: str = plan["task"]
        self._feeds = tuple(
            _Feed(f["name"], tuple(f["columns"]), f["type"] == "string") for f in plan["feeds"]
        )
        one = self._feeds[0] if len(self._feeds) == 1 else None
        #: The columns of the one numeric input, when the model has just that (else None).
        self.matrix_columns = one.columns if one is not None and not one.text else None
        self.classes: list[Any] | None = plan.get("classes")
        self._scores: str | None = plan.get("scores")
        dtype = plan.get("label_dtype")
        self._label_dtype = None if dtype is None else np.dtype(dtype)
        outputs = [o.name for o in self.session.get_outputs()]
        self._outputs = outputs
        # Labels come back as the class itself or as its position (LightGBM with text
        # classes, boosters): positions are looked up in the classes once per call.
        self._class_array = None if self.classes is None else np.asarray(self.classes)
        if self._class_array is not None and self._label_dtype is not None:
            self._class_array = self._class_array.astype(self._label_dtype)

    def _feed(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np

        feed: dict[str, np.ndarray] = {}
        for f in self._feeds:
            if len(f.columns) == 1:
                value = columns[f.columns[0]]
                if f.text:
                    feed[f.name] = np.asarray(value, dtype=object).reshape(-1, 1)
                else:
                    feed[f.name] = np.asarray(value, dtype=np.float32).reshape(-1, 1)
                continue
            first = columns[f.columns[0]]
            matrix = np.empty((len(first), len(f.columns)), dtype=np.float32)
            for j, name in enumerate(f.columns):
                matrix[:, j] = columns[name]
            feed[f.name] = matrix
        return feed

    def predict(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions and, for a classifier, probabilities (n×k, in ``classes`` order).

        Args:
            columns: the schema's input columns as 1-D numpy arrays (numbers float64 or
                int64, booleans bool, text and categories object arrays of ``str``), each
                checked already (``loopml.registry.schema.check_input``).

        Returns:
            ``(predictions, probabilities)``. A classifier's predictions are its labels in
            the dtype the native model returns; a regressor's are float32 values and its
            probabilities ``None``. A native booster's predictions are what its
            ``predict`` returns: P(class 1) for a binary objective, the n×k matrix for a
            multi-class one.
        """
        return self._answer(self.session.run(self._outputs, self._feed(columns)))

    def predict_matrix(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`predict` for a model with one numeric input, from its columns stacked as
        rows of ``matrix`` (features × rows, in :attr:`matrix_columns` order): the serving
        fast path, which skips building a dict of columns only to stack them again."""
        import numpy as np

        assert self.matrix_columns is not None
        feed = {self._feeds[0].name: np.ascontiguousarray(matrix.T, dtype=np.float32)}
        return self._answer(self.session.run(self._outputs, feed))

    def _answer(self, out: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
        import numpy as np

        if self.task == "regressor":
            return np.asarray(out[0]).reshape(-1), None
        labels, probabilities = np.asarray(out[0]).reshape(-1), np.asarray(out[1])
        if self._scores == "binary":
            return probabilities[:, 1], probabilities
        if self._scores == "multi":
            return probabilities, probabilities
        assert self._class_array is not None
        if labels.dtype.kind in "iu" and self._class_array.dtype.kind not in "iu":
            labels = self._class_array[labels]  # positions -> the classes themselves
        elif self._label_dtype is not None and labels.dtype != self._label_dtype:
            labels = labels.astype(self._label_dtype)
        return labels, probabilities

    def predict_frame(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`predict` on a DataFrame that holds the schema's columns (checked already)."""
        return self.predict(frame_columns(frame, self.columns))

    def __repr__(self) -> str:
        return f"<OnnxRunner {self.task}, {len(self.columns)} inputs>"


def frame_columns(frame: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    """The columns ``names`` of ``frame`` as the 1-D arrays :meth:`OnnxRunner.predict` takes."""
    import numpy as np

    columns: dict[str, np.ndarray] = {}
    for name in names:
        s = frame[name]
        if s.dtype.name == "category" or s.dtype.kind in "OUS" or s.dtype.name.startswith("str"):
            columns[name] = s.astype(object).to_numpy()
        elif s.dtype.kind == "b":
            columns[name] = s.to_numpy(dtype=bool)
        else:
            columns[name] = s.to_numpy(dtype=np.float64, na_value=np.nan)
    return columns


# -- parity ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parity:
    """How closely an ONNX model reproduces the native one on sample rows.

    ``max_scaled_diff`` is ``max |onnx - native| / max(1, |native|)`` over the values
    compared (probabilities of a classifier, values of a regressor); ``ok`` says it is at
    most ``tolerance`` and that every label agrees, except on rows whose two most likely
    classes are within ``tolerance`` of each other (a tie either side may break).
    """

    rows: int
    compared: str  # "probabilities" | "values"
    max_abs_diff: float
    max_scaled_diff: float
    label_agreement: float | None  # share of rows whose labels agree (classifiers)
    tie_disagreements: int  # rows whose labels differ on a near-tie
    tolerance: float
    ok: bool

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        labels = (
            ""
            if self.label_agreement is None
            else f"; labels agree on {self.label_agreement:.2%}"
            + (f" ({self.tie_disagreements} near-ties)" if self.tie_disagreements else "")
        )
        return (
            f"parity {verdict} on {self.rows:,} rows: max difference {self.max_abs_diff:.2g} in "
            f"{self.compared} ({self.max_scaled_diff:.2g} scaled; tolerance {self.tolerance:g})"
            f"{labels}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "compared": self.compared,
            "max_abs_diff": self.max_abs_diff,
            "max_scaled_diff": self.max_scaled_diff,
            "label_agreement": self.label_agreement,
            "tie_disagreements": self.tie_disagreements,
            "tolerance": self.tolerance,
            "ok": self.ok,
        }


def native_predict(model: Any, frame: pd.DataFrame) -> tuple[Any, Any]:
    """``(predict, predict_proba or None)`` of the native model on a checked frame."""
    kind = type(model)
    if kind.__name__ == "Booster" and kind.__module__.startswith("xgboost"):
        import xgboost  # its native booster predicts from a DMatrix only

        return model.predict(xgboost.DMatrix(frame)), None
    proba = model.predict_proba(frame) if hasattr(model, "predict_proba") else None
    return model.predict(frame), proba


def parity(
    model: Any, runner: OnnxRunner, sample_frame: pd.DataFrame, *, tolerance: float = 1e-4
) -> Parity:
    """Compare the native model and its ONNX runner on ``sample_frame`` (checked rows).

    Raises:
        InvalidParameterError: ``tolerance`` is not a positive number, or no rows.
    """
    import numpy as np

    if not isinstance(tolerance, int | float) or not tolerance > 0:
        raise InvalidParameterError(
            f"parity tolerance: got {tolerance!r}; expected a positive number, e.g. 1e-4."
        )
    if len(sample_frame) == 0:
        raise InvalidParameterError("parity: got no sample rows; expected at least one.")
    frame = sample_frame[runner.columns]
    native, native_proba = native_predict(model, frame)
    predictions, probabilities = runner.predict_frame(frame)
    classifier = runner.task == "classifier" and native_proba is not None
    if classifier:
        want, got = np.asarray(native_proba, dtype=np.float64), probabilities
    else:
        want, got = np.asarray(native, dtype=np.float64), predictions
    got = np.asarray(got, dtype=np.float64).reshape(want.shape)
    diff = np.abs(got - want)
    finite = np.isfinite(diff)
    same_missing = np.isnan(got) == np.isnan(want)
    max_abs = float(diff[finite].max()) if finite.any() else 0.0
    scaled = diff / np.maximum(1.0, np.abs(want))
    max_scaled = float(scaled[finite].max()) if finite.any() else 0.0
    agreement, ties = None, 0
    labels_ok = True
    if classifier:
        agree = np.asarray(native) == np.asarray(predictions)
        agreement = float(agree.mean())
        top2 = np.sort(want, axis=1)[:, -2:] if want.shape[1] > 1 else want
        near_tie = (top2[:, -1] - top2[:, 0]) <= 2 * tolerance
        ties = int((~agree & near_tie).sum())
        labels_ok = bool((agree | near_tie).all())
    ok = bool(max_scaled <= tolerance and same_missing.all() and labels_ok)
    return Parity(
        rows=len(frame),
        compared="probabilities" if classifier else "values",
        max_abs_diff=max_abs,
        max_scaled_diff=max_scaled,
        label_agreement=agreement,
        tie_disagreements=ties,
        tolerance=float(tolerance),
        ok=ok,
    )


# -- sample rows ----------------------------------------------------------------------------


def sample_rows(
    client: Client, version: ModelVersion, n: int = 1000, *, schema: ModelSchema | None = None
) -> pd.DataFrame:
    """Rows to check parity on: ``n`` rows of the data the version was trained on, or
    rows made up from its schema when none of that data is available.

    Training rows are the honest test: they cover the region of the input space the model
    splits and weighs. Made-up rows (seed 0: numbers from a standard normal, categories
    drawn from the schema's, text without categories as ``"a"``/``"b"``/``"c"``, booleans
    at random) only show the converted graph computes the same function where they fall,
    which may miss thresholds far from zero. ``frame.attrs["source"]`` says which it was.

    Args:
        client: the store the version lives in.
        version: the model version (its ``datasets`` are read, schema columns only).
        n: at most this many rows (a seeded random sample of a bigger dataset).
        schema: the schema to use instead of the version's (e.g. one read off the model).

    Raises:
        InvalidParameterError: the version has no input schema and none is given.
    """
    from loopml.registry.schema import ModelSchema, SchemaError, check_input

    if schema is None:
        if version.input_schema is None:
            raise InvalidParameterError(
                f"{version.label} has no input schema, so there are no columns to sample. "
                "Register it with X= the frame it was trained on."
            )
        schema = ModelSchema.from_dict(version.input_schema)
    names = schema.names
    from loopml.data.datasets import TABULAR, Dataset

    for label in version.datasets:
        try:
            dataset = client.dataset_version(label)
            if dataset.format not in TABULAR:
                continue
            frame = Dataset(label).frame(client)
        except Exception:  # gone, or unreadable: the next one, or made-up rows
            continue
        if not all(name in frame.columns for name in names):
            continue
        frame = frame[names]
        nullable = [c.name for c in schema.inputs if c.nullable]
        frame = frame.dropna(subset=[c for c in names if c not in nullable])
        if len(frame) > n:
            frame = frame.sample(n, random_state=0)
        try:
            checked = check_input(frame, schema)
        except SchemaError:
            continue
        if len(checked):
            checked = checked.reset_index(drop=True)
            checked.attrs["source"] = f"{len(checked):,} rows of dataset {label}"
            return checked
    made = check_input(_made_up(schema, n), schema)
    made.attrs["source"] = f"{n:,} rows made up from the schema (seed 0): no training data"
    return made


def _made_up(schema: ModelSchema, n: int) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for spec in schema.inputs:
        if spec.kind == "float":
            out[spec.name] = rng.normal(size=n)
        elif spec.kind == "integer":
            out[spec.name] = np.rint(rng.normal(scale=3.0, size=n)).astype(np.int64)
        elif spec.kind == "boolean":
            out[spec.name] = rng.random(n) < 0.5
        elif spec.kind == "datetime":
            out[spec.name] = pd.Timestamp("2024-01-01") + pd.to_timedelta(
                rng.integers(0, 365 * 86400, n), unit="s"
            )
        else:
            values = list(spec.categories) if spec.categories else ["a", "b", "c"]
            picked = [values[i] for i in rng.integers(0, len(values), n)]
            if spec.kind == "category":
                out[spec.name] = pd.Categorical(picked, categories=values)
            else:
                out[spec.name] = np.asarray(picked, dtype=object)
    return pd.DataFrame(out, columns=schema.names)


# -- quantizing -----------------------------------------------------------------------------

QUANTIZED_OPS = ("MatMulInteger", "DynamicQuantizeLinear", "ConvInteger", "QLinearMatMul")
INT8_KERNELS = ("MatMul", "Conv", "Attention", "LSTM", "Gather", "EmbedLayerNormalization")


def quantize_int8(onnx_bytes: bytes) -> bytes:
    """An int8 dynamically quantized copy of an ONNX model (ONNX Runtime's
    ``quantize_dynamic``: weights stored as int8, activations quantized per batch).

    Only matrix products, convolutions and a few others have int8 kernels. A tree
    ensemble, or scikit-learn's linear models (ONNX-ML ``LinearClassifier`` /
    ``LinearRegressor``), have none: then nothing is quantized and the bytes come back
    unchanged; :func:`quantized_ops` counts what was.

    Raises:
        InvalidParameterError: ONNX Runtime could not quantize the model.
    """
    import logging
    import tempfile
    from pathlib import Path

    if not any(op in INT8_KERNELS for op in operator_types(onnx_bytes)):
        return onnx_bytes
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic logs advice ("consider pre-processing") on the root logger: hush it
    # for this call only.
    def advice(record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(advice)
    try:
        with tempfile.TemporaryDirectory(prefix="loopml-quantize-") as tmp:
            source, target = os.path.join(tmp, "model.onnx"), os.path.join(tmp, "int8.onnx")
            Path(source).write_bytes(onnx_bytes)
            try:
                quantize_dynamic(source, target, weight_type=QuantType.QInt8)
            except Exception as exc:
                raise InvalidParameterError(
                    f"ONNX Runtime could not quantize this model to int8: {_first_line(exc)}. "
                    "Export it without --quantize."
                ) from exc
            quantized = Path(target).read_bytes()
    finally:
        root.removeFilter(advice)
    if quantized_ops(quantized) == 0:
        return onnx_bytes
    return quantized


def quantized_ops(onnx_bytes: bytes) -> int:
    """How many operators of a model run in int8 (0 for a model nothing was quantized in)."""
    import onnx

    graph = onnx.load_from_string(onnx_bytes).graph
    return sum(node.op_type in QUANTIZED_OPS for node in graph.node)


def operator_types(onnx_bytes: bytes) -> list[str]:
    """The distinct operator types of a model, sorted (to say what could not be quantized)."""
    import onnx

    return sorted({node.op_type for node in onnx.load_from_string(onnx_bytes).graph.node})
