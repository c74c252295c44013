"""Any model's predictions in one shape: the adapters between libraries and the metrics.

A suite judges scikit-learn estimators and pipelines, XGBoost and LightGBM (their
scikit-learn classes and their native ``Booster``), statsmodels results, any object with
``predict``/``predict_proba`` and any callable. This module asks each for what the task's
metrics need — probabilities for classification when the model has them, labels otherwise;
values for regression; forecasts for forecasting — and maps class labels to the suite's
codes (positions in the suite's sorted classes), so ``predict_proba`` columns line up with
the classes whatever order the model learned them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loopml.evaluation.errors import EvaluationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from loopml.evaluation.metrics import Predictions


def describe(model: Any) -> str:
    """``RandomForestClassifier``, ``xgboost.Booster``, ``forecast()``: a model for people."""
    if isinstance(model, type(describe)) or (callable(model) and not hasattr(model, "predict")):
        return f"{getattr(model, '__qualname__', type(model).__name__)}()"
    kind = type(model)
    module = kind.__module__.partition(".")[0]
    if module in ("xgboost", "lightgbm", "statsmodels") and kind.__name__ in (
        "Booster",
        "RegressionResultsWrapper",
        "BinaryResultsWrapper",
    ):
        return f"{module}.{kind.__name__}"
    return kind.__name__


def _library(model: Any) -> str:
    return type(model).__module__.partition(".")[0]


def _native_booster(model: Any) -> bool:
    return type(model).__name__ == "Booster" and _library(model) in ("xgboost", "lightgbm")


def _call(what: str, model: Any, fn: Any, X: Any) -> Any:
    """Call the model; its own exceptions become one message naming the model and the fix."""
    try:
        return fn(X)
    except EvaluationError:
        raise
    except Exception as exc:  # the model's code, any library: report it, do not crash
        raise EvaluationError(
            f"{describe(model)}.{what} failed on the suite's test rows: "
            f"{type(exc).__name__}: {exc}. Check the model was trained on the suite's features "
            "(`suite.train()` gives them) in the same order."
        ) from exc


def _raw(model: Any, X: pd.DataFrame, *, proba: bool) -> Any:
    """The model's output on ``X``: probabilities when ``proba`` (if it has them)."""
    if _native_booster(model):
        if _library(model) == "xgboost":
            import xgboost

            return _call("predict", model, lambda x: model.predict(xgboost.DMatrix(x)), X)
        return _call("predict", model, model.predict, X)
    if _library(model) == "statsmodels":
        return _call("predict", model, lambda x: model.predict(_with_constant(model, x)), X)
    if proba and hasattr(model, "predict_proba"):
        return _call("predict_proba", model, model.predict_proba, X)
    if hasattr(model, "predict"):
        return _call("predict", model, model.predict, X)
    if callable(model):
        return _call("__call__", model, model, X)
    raise EvaluationError(
        f"A {type(model).__name__} cannot be evaluated: expected an object with predict() "
        "(and predict_proba() for probabilities) or a function f(X) -> predictions."
    )


def _with_constant(model: Any, X: pd.DataFrame) -> Any:
    """statsmodels formulas take the frame; array models fitted with a constant need one."""
    names = getattr(getattr(model, "model", None), "exog_names", None) or []
    if "const" in names and "const" not in X.columns:
        import statsmodels.api as sm

        return sm.add_constant(X, has_constant="add")
    return X


def _array(model: Any, output: Any, rows: int) -> np.ndarray:
    import numpy as np

    values = np.asarray(output)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape[0] != rows:
        raise EvaluationError(
            f"{describe(model)} returned {values.shape[0]:,} predictions for {rows:,} test rows: "
            "a model must return one prediction per row, in the rows' order."
        )
    return values


def label_codes(labels: Any, classes: Sequence[Any]) -> np.ndarray:
    """Labels -> positions in ``classes`` (-1 for a label that is not one of them).

    Vectorised through pandas' categorical codes; labels that compare equal only loosely
    (1 and 1.0, True and 1) are matched by value on the slow path, which only rows the
    fast path missed take.
    """
    import numpy as np
    import pandas as pd

    values = np.asarray(labels)
    codes = np.asarray(pd.Categorical(values, categories=list(classes)).codes, dtype=np.int64)
    missed = np.flatnonzero(codes < 0)
    if len(missed):
        index = {_key(c): i for i, c in enumerate(classes)}
        codes[missed] = [index.get(_key(v), -1) for v in values[missed].tolist()]
    return codes


def _codes(model: Any, labels: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """Predicted labels -> positions in the suite's classes."""
    import numpy as np

    codes = label_codes(labels, classes)
    if (codes < 0).any():
        bad = labels[int(np.argmax(codes < 0))]
        raise EvaluationError(
            f"{describe(model)} predicted the label {bad!r}, which is not one of the "
            f"suite's classes {list(classes)[:20]}. Train the model on the suite's target."
        )
    return codes


def _key(value: Any) -> Any:
    """Labels compare by value: 1, 1.0 and numpy's 1 are one class; '1' is another."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return float(value)
    return value


def predict(
    model: Any,
    X: pd.DataFrame,
    *,
    task: str,
    classes: Sequence[Any] = (),
    test_labels: Sequence[Any] = (),
) -> Predictions:
    """What ``model`` predicts for ``X``, shaped for ``task``'s metrics.

    ``test_labels`` are the classes present in the test rows: a model that was never
    trained on one of them cannot be judged fairly, which is an error here.
    """
    import numpy as np

    from loopml.evaluation.metrics import Predictions

    rows = len(X)
    if task in ("regression", "forecasting"):
        values = _array(model, _raw(model, X, proba=False), rows).astype(np.float64)
        return Predictions(values=values)
    output = _array(model, _raw(model, X, proba=True), rows)
    k = len(classes)
    learned = getattr(model, "classes_", None)
    if learned is not None:
        known = {_key(c) for c in np.asarray(learned).tolist()}
        unseen = [c for c in test_labels if _key(c) not in known]
        if unseen:
            raise EvaluationError(
                f"The test rows hold class {unseen[0]!r}, which {describe(model)} was never "
                f"trained on (it knows {np.asarray(learned).tolist()[:20]}). Train on data with "
                "every class, e.g. with a stratified split."
            )
    if output.ndim == 2:  # probabilities, one column per class the model learned
        order = (
            [_key(c) for c in np.asarray(learned).tolist()]
            if learned is not None
            else [_key(c) for c in classes]
        )
        if output.shape[1] != len(order):
            raise EvaluationError(
                f"{describe(model)} returned {output.shape[1]} probability columns for "
                f"{len(order)} classes."
            )
        scores = np.zeros((rows, k), dtype=np.float64)
        positions = {_key(c): i for i, c in enumerate(classes)}
        for j, label in enumerate(order):
            if label in positions:
                scores[:, positions[label]] = output[:, j]
        if task == "binary":
            return Predictions(scores=scores[:, 1])
        return Predictions(scores=scores, labels=scores.argmax(axis=1))
    if task == "binary" and np.issubdtype(output.dtype, np.floating):
        as_labels = np.isin(output, (0.0, 1.0)).all() and not _native_booster(model)
        if not as_labels:  # a score per row: P(classes[1]) (native boosters, statsmodels, …)
            return Predictions(scores=output.astype(np.float64))
    return Predictions(labels=_codes(model, output, classes))


def forecast(model: Any, history: pd.DataFrame, horizon: int) -> np.ndarray:
    """Forecasts of the next ``horizon`` steps after ``history`` (rolling-origin suites).

    ``model`` is a function ``f(history, horizon)`` (refit at every origin: the honest way
    to backtest), or an object with ``forecast(history, horizon)``.
    """
    import numpy as np

    fn = getattr(model, "forecast", None) if not callable(model) else model
    if fn is None:
        raise EvaluationError(
            f"A rolling-origin suite refits the model at every origin: pass a function "
            f"forecast(history, horizon) -> values, not a fitted {describe(model)}."
        )
    try:
        output = fn(history, horizon)
    except EvaluationError:
        raise
    except Exception as exc:
        raise EvaluationError(
            f"{describe(model)} failed to forecast {horizon} steps after {len(history):,} rows: "
            f"{type(exc).__name__}: {exc}."
        ) from exc
    values = np.asarray(output, dtype=np.float64).reshape(-1)
    if values.shape[0] != horizon:
        raise EvaluationError(
            f"{describe(model)} returned {values.shape[0]} forecasts for a horizon of {horizon}: "
            "return one value per step ahead."
        )
    return values
