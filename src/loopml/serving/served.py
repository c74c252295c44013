"""A model version made ready to answer requests: checked input in, predictions out.

Everything that can be done once is done when a :class:`ServedModel` is built: the schema is
read, a plan per input column is made, the runtime is chosen (ONNX Runtime when the model
converts and its answers match the native model's on sample rows; the native model
otherwise) and the output kind is fixed. A request then costs one pass over its values.

The input check has two paths with one set of rules. The fast path takes the column lists
a JSON body decodes to and accepts them only when every value is already exactly what the
column needs (numbers for a float column, whole numbers in int64 range for an integer
column, known text for a category, no missing values): a type-set test per column, then one
numpy conversion. Anything else, including every input that is wrong, goes through
``loopml.registry.schema.check_input``, the one checker the Python API uses; so a rejection
over HTTP says exactly what ``loopml.load(...).predict`` would say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from loopml.registry.schema import ModelSchema
    from loopml.store.models import ModelVersion
    from loopml.tracking.client import Client

RUNTIMES = ("auto", "onnx", "native")


@dataclass(frozen=True)
class Outputs:
    """What a model answered for a batch: one prediction per row, and for a classifier the
    probability of each class (columns in ``classes`` order)."""

    predictions: np.ndarray[Any, Any]
    probabilities: np.ndarray[Any, Any] | None = None
    classes: list[Any] | None = None

    def take(self, rows: np.ndarray[Any, Any]) -> Outputs:
        """The answers for the rows at positions ``rows``."""
        proba = self.probabilities[rows] if self.probabilities is not None else None
        return Outputs(self.predictions[rows], proba, self.classes)


class Checked:
    """A batch that passed the input check: the schema's columns, in order, ready for either
    runtime (numpy columns for ONNX Runtime, a DataFrame for the native model)."""

    __slots__ = ("_columns", "_frame", "_schema", "matrix", "n")

    def __init__(
        self,
        schema: ModelSchema,
        n: int,
        *,
        columns: dict[str, np.ndarray[Any, Any]] | None = None,
        frame: pd.DataFrame | None = None,
        matrix: np.ndarray[Any, Any] | None = None,
    ) -> None:
        self._schema = schema
        self.n = n
        #: All columns stacked (columns × rows, float64) when every column is a float one.
        self.matrix = matrix
        self._columns = columns
        self._frame = frame

    def take(self, rows: np.ndarray[Any, Any]) -> Checked:
        """The rows at positions ``rows`` (a sample to log, say)."""
        if self._columns is not None:
            return Checked(
                self._schema, len(rows), columns={k: v[rows] for k, v in self._columns.items()}
            )
        assert self._frame is not None
        return Checked(self._schema, len(rows), frame=self._frame.iloc[rows])

    def columns(self) -> dict[str, np.ndarray[Any, Any]]:
        """The columns as 1-D numpy arrays: numbers float64/int64 (a nullable integer column
        with gaps as float64 with NaN), booleans bool, text and categories object."""
        if self._columns is None:
            import numpy as np

            assert self._frame is not None
            out: dict[str, np.ndarray[Any, Any]] = {}
            for spec in self._schema.inputs:
                s = self._frame[spec.name]
                if spec.kind in ("string", "category"):
                    out[spec.name] = np.asarray(s.astype(object), dtype=object)
                elif spec.kind in ("integer", "boolean") and s.hasnans:
                    out[spec.name] = s.to_numpy(dtype="float64", na_value=np.nan)
                else:
                    out[spec.name] = s.to_numpy()
            self._columns = out
        return self._columns

    def frame(self) -> pd.DataFrame:
        """The batch as the frame the model was trained on (``check_input``'s result)."""
        if self._frame is None:
            import pandas as pd

            assert self._columns is not None
            data: dict[str, Any] = {}
            for spec in self._schema.inputs:
                values = self._columns[spec.name]
                if spec.kind == "category":
                    data[spec.name] = pd.Categorical(values, categories=list(spec.categories or ()))
                else:
                    data[spec.name] = values
            self._frame = pd.DataFrame(data, columns=self._schema.names, copy=False)
        return self._frame

    def records(self) -> list[dict[str, Any]]:
        """The rows as JSON-able dicts (what the prediction log stores)."""
        from loopml.serving.jsonable import column_values

        cols = {name: column_values(values) for name, values in self.columns().items()}
        names = list(cols)
        return [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)]


@dataclass
class ServedModel:
    """A registered version with its check and its runtime, ready for ``predict``.

    Build it with :func:`serve_version` (or :meth:`from_ref`); ``runtime`` says which one
    answers (``"onnx"`` or ``"native"``), ``parity`` why.
    """

    version: ModelVersion
    model: Any
    schema: ModelSchema | None
    runtime: str = "native"
    parity: Any = None  # loopml.serving.onnx.Parity when an ONNX export was tried
    onnx_error: str | None = None  # why ONNX Runtime is not used, when it was tried
    _onnx: Any = field(default=None, repr=False)
    _plan: tuple[tuple[str, str, bool, frozenset[Any] | None], ...] = field(default=(), repr=False)
    _wants_numpy: bool = field(default=False, repr=False)
    _floats: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.schema is not None:
            self._floats = tuple(s.name for s in self.schema.inputs if s.kind == "float")
            self._plan = tuple(
                (
                    spec.name,
                    spec.kind,
                    spec.nullable,
                    frozenset(spec.categories) if spec.categories is not None else None,
                )
                for spec in self.schema.inputs
            )
        # A scikit-learn model fitted on an array has no column names: give it an array.
        self._wants_numpy = hasattr(self.model, "n_features_in_") and not hasattr(
            self.model, "feature_names_in_"
        )

    @property
    def label(self) -> str:
        return self.version.label

    @property
    def classes(self) -> list[Any] | None:
        return (self.version.output_schema or {}).get("classes")

    # -- the input check ----------------------------------------------------------------

    def check(self, X: Any) -> Checked:
        """Check any input ``check_input`` takes (a DataFrame, records, a file, ...).

        Raises:
            SchemaError: every problem, naming the columns and rows.
        """
        if self.schema is None:
            raise InvalidParameterError(
                f"{self.label} has no input schema, so its input cannot be checked. Register "
                "it with X= (the training frame) so its columns are known."
            )
        from loopml.registry.schema import check_input

        frame = check_input(X, self.schema)
        return Checked(self.schema, len(frame), frame=frame)

    def check_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> Checked:
        """Check a JSON body's column lists (every list ``n`` long); the fast path, falling
        back to :meth:`check` with the same rules for anything it does not accept as is."""
        fast = self._fast(columns, n)
        if fast is not None:
            return fast
        import pandas as pd

        frame = pd.DataFrame({k: pd.Series(list(v), dtype=object) for k, v in columns.items()})
        if frame.shape[0] != n:  # no columns at all: keep the row count
            frame = pd.DataFrame(index=range(n))
        return self.check(frame)

    def _fast(self, columns: Mapping[str, Sequence[Any]], n: int) -> Checked | None:
        import numpy as np

        if self.schema is None or n == 0:
            return None
        out: dict[str, np.ndarray[Any, Any]] = {}
        if self._floats:  # all float columns at once: one type test, one array, one NaN test
            try:
                lists = [columns[name] for name in self._floats]
            except KeyError:
                return None
            flat = list(chain.from_iterable(lists))
            types = set(map(type, flat))
            if not types <= {float, int}:
                return None
            try:
                matrix = np.array(lists, dtype=np.float64)
            except (OverflowError, ValueError, TypeError):
                return None
            if matrix.shape != (len(lists), n):
                return None
            if float in types and not np.isfinite(matrix).all():
                return None  # NaN is a missing value, inf no number: the full check says so
            out = dict(zip(self._floats, matrix, strict=True))
            if len(self._floats) == len(self._plan):
                assert self.schema is not None
                return Checked(self.schema, n, columns=out, matrix=matrix)
        for name, kind, _nullable, categories in self._plan:
            if kind == "float":
                continue
            values = columns.get(name)
            if values is None:
                return None
            types = set(map(type, values))
            try:
                if kind == "integer":
                    if types != {int}:
                        return None
                    out[name] = np.array(values, dtype=np.int64)
                elif kind == "boolean":
                    if types != {bool}:
                        return None
                    out[name] = np.array(values, dtype=bool)
                elif kind in ("string", "category"):
                    if types != {str}:
                        return None
                    if categories is not None and not categories.issuperset(values):
                        return None
                    out[name] = np.array(values, dtype=object)
                else:
                    return None
            except (OverflowError, ValueError, TypeError):
                return None
        assert self.schema is not None
        if len(self._floats) != len(self._plan):  # floats went first: back to schema order
            out = {name: out[name] for name in self.schema.names}
        return Checked(self.schema, n, columns=out)

    # -- predicting ---------------------------------------------------------------------

    def predict(self, batch: Checked) -> Outputs:
        """The answers for a checked batch, from the chosen runtime."""
        if self._onnx is not None:
            if batch.matrix is not None and self._onnx.matrix_columns == self._floats:
                predictions, probabilities = self._onnx.predict_matrix(batch.matrix)
                return Outputs(predictions, probabilities, self.classes)
            predictions, probabilities = self._onnx.predict(batch.columns())
            return Outputs(predictions, probabilities, self.classes)
        return self.predict_native(batch)

    def predict_native(self, batch: Checked) -> Outputs:
        """The native model's answers (what the ONNX export is checked against)."""
        import numpy as np

        X: Any = batch.frame()
        if self._wants_numpy:
            X = X.to_numpy()
        model = self.model
        kind = type(model)
        if kind.__name__ == "Booster" and kind.__module__.startswith("xgboost"):
            import xgboost

            raw = np.asarray(model.predict(xgboost.DMatrix(X, enable_categorical=True)))
            return self._booster_outputs(raw)
        if kind.__name__ == "Booster" and kind.__module__.startswith("lightgbm"):
            return self._booster_outputs(np.asarray(model.predict(X)))
        probabilities = None
        if hasattr(model, "predict_proba") and self.classes is not None:
            probabilities = np.asarray(model.predict_proba(X))
            classes = np.asarray(getattr(model, "classes_", self.classes))
            predictions = classes[probabilities.argmax(axis=1)]
        else:
            predictions = np.asarray(model.predict(X))
        return Outputs(predictions, probabilities, self.classes)

    def _booster_outputs(self, raw: np.ndarray[Any, Any]) -> Outputs:
        """A native booster's raw output: values, or a binary/multi-class probability."""
        import numpy as np

        classes = self.classes
        if classes is None:
            return Outputs(raw.reshape(len(raw), -1)[:, 0] if raw.ndim > 1 else raw)
        if raw.ndim == 1:
            raw = np.column_stack([1.0 - raw, raw])
        return Outputs(np.asarray(classes)[raw.argmax(axis=1)], raw, classes)

    def predict_frame(self, X: Any) -> Outputs:
        """Check ``X`` and predict: the Python-side shortcut for batch scoring and tests."""
        return self.predict(self.check(X))


def serve_version(
    version: ModelVersion,
    model: Any,
    *,
    runtime: str = "auto",
    client: Client | None = None,
    tolerance: float = 1e-4,
) -> ServedModel:
    """A :class:`ServedModel` for ``version`` (whose loaded artifact is ``model``).

    ``runtime="auto"`` converts the model to ONNX and keeps ONNX Runtime when its answers
    match the native model's within ``tolerance`` on sample rows (see
    ``loopml.serving.onnx.sample_rows``); ``"onnx"`` requires that (an error says why not);
    ``"native"`` never tries.
    """
    if runtime not in RUNTIMES:
        from loopml.errors import did_you_mean

        raise InvalidParameterError(
            f"runtime: got {runtime!r}; expected one of {list(RUNTIMES)}."
            f"{did_you_mean(str(runtime), list(RUNTIMES))}"
        )
    schema = None
    if version.input_schema is not None:
        from loopml.registry.schema import ModelSchema

        schema = ModelSchema.from_dict(version.input_schema)
    served = ServedModel(version, model, schema)
    if runtime == "native" or schema is None:
        if runtime == "onnx":
            raise InvalidParameterError(
                f"{version.label} has no input schema, and ONNX needs one to name its inputs."
            )
        return served
    _try_onnx(served, schema, runtime, client, tolerance)
    return served


def _try_onnx(
    served: ServedModel, schema: ModelSchema, runtime: str, client: Client | None, tol: float
) -> None:
    try:
        from loopml.serving import onnx
    except ImportError as exc:  # the onnx extra is not installed
        served.onnx_error = f"ONNX Runtime is not installed ({exc.name}): pip install loopml[onnx]"
        if runtime == "onnx":
            raise InvalidParameterError(served.onnx_error) from exc
        return
    from loopml.tracking.client import given_or_default

    try:
        runner = onnx.OnnxRunner(onnx.convert(served.model, schema))
        sample = onnx.sample_rows(given_or_default(client), served.version, schema=schema)
        served.parity = onnx.parity(served.model, runner, sample, tolerance=tol)
    except InvalidParameterError as exc:
        served.onnx_error = str(exc)
        if runtime == "onnx":
            raise
        return
    if not served.parity.ok:
        served.onnx_error = f"ONNX answers differ from the native model's: {served.parity}"
        if runtime == "onnx":
            raise InvalidParameterError(served.onnx_error)
        return
    served._onnx = runner
    served.runtime = "onnx"


def load_served(ref: str, *, runtime: str = "auto", client: Client | None = None) -> ServedModel:
    """The registered version ``ref`` names (``churn@production``), ready to serve."""
    from loopml.tracking.client import given_or_default

    c = given_or_default(client)
    version = c.model_version(ref)
    return serve_version(version, c.load_artifact(version.digest), runtime=runtime, client=c)
