"""Judging one model on one suite: predictions, metrics with intervals, slices, stored.

The steps, in order:

1. the model is identified: a stored model by its digest, a step output of a run, or a live
   object, which is stored (so the result points at exactly what was judged; a model that
   cannot be stored — a lambda, an object no materializer takes — is identified by its
   predictions instead);
2. a stored evaluation of the same model on the same suite version with the same settings
   (resamples, seed, confidence, metrics) is returned as is unless ``force``;
3. the model predicts the test rows (for rolling-origin suites: forecasts at every origin);
4. every metric gets a bootstrap interval; each slice value gets its own figures, flagged
   when clearly worse than the model's overall figure;
5. predictions and the result are stored, the evaluation row links them to the suite, the
   model and the run; inside a run, the metrics and their intervals are logged to it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError, LoopmlError, NotFoundError
from loopml.evaluation.errors import EvaluationError
from loopml.store.suites import Evaluation

if TYPE_CHECKING:
    import numpy as np

    from loopml.evaluation.metrics import Metric, Predictions
    from loopml.evaluation.result import EvaluationResult
    from loopml.evaluation.suites import Suite
    from loopml.tracking.client import Client

MAX_SLICE_VALUES = 20  # per slice column, the most frequent values in the test rows
MIN_SLICE_ROWS = 10  # fewer rows say nothing with confidence


@dataclass
class Model:
    """A model to judge, with what identifies it in the store. A stored model is loaded only
    when it has to predict: a stored result is found by its digest alone."""

    obj: Any
    digest: str | None  # the stored model's artifact; None until stored or unstorable
    label: str  # for people
    run_id: str | None  # the run that produced it, when known
    client: Client | None = None  # set for a stored model not loaded yet

    def load(self) -> Any:
        if self.obj is None and self.client is not None and self.digest is not None:
            self.obj = self.client.load_artifact(self.digest)
        return self.obj


def resolve_model(model: Any, client: Client, label: str | None = None) -> Model:
    """A model object, a stored model's digest, or ``"RUN:OUTPUT"`` -> ``Model``."""
    from loopml.evaluation.models import describe

    if isinstance(model, str):
        run_ref, colon, output = model.rpartition(":")
        if colon:
            return _run_output(client, run_ref, output, label)
        if "@" in model:  # a registered version: NAME@N, NAME@ALIAS
            version = client.model_version(model)
            return Model(None, version.digest, label or version.label, version.run_id, client)
        try:
            record = client.artifact(model)
        except (NotFoundError, InvalidParameterError):
            raise EvaluationError(
                f"Model {model!r} is neither a registered version (NAME@N, NAME@ALIAS), a "
                "stored artifact's digest nor RUN:OUTPUT (e.g. 'train#3:train'). `loopml "
                "models` lists registered models, `loopml runs show RUN` a run's outputs."
            ) from None
        return Model(None, record.digest, label or record.digest[:12], None, client)
    from loopml.tracking.context import active_run

    run = active_run()
    if run is None:
        return Model(model, None, label or describe(model), None)
    return Model(model, None, label or f"{run.label} {describe(model)}", run.id)


def _run_output(client: Client, run_ref: str, output: str, label: str | None) -> Model:
    record, digest = client.run_output(run_ref, output)
    return Model(None, digest, label or f"{record.name}:{output}", record.id, client)


def _store_model(client: Client, model: Model) -> str | None:
    """The model's digest, storing a live object; None when no materializer takes it."""
    if model.digest is not None:
        return model.digest
    try:
        return client.store_value(model.obj).digest
    except LoopmlError:
        return None  # e.g. a lambda: identified by its predictions below


def _metrics(suite: Suite, horizons: int | None) -> list[Metric]:
    from loopml.evaluation.metrics import custom_metric, default_metrics
    from loopml.evaluation.suites import resolve_metric

    found = default_metrics(
        suite.task,  # type: ignore[arg-type]
        threshold=suite.options.threshold,
        horizons=horizons,
    )
    for path in suite.options.metrics:
        fn = resolve_metric(path)
        default = "values" if suite.task in ("regression", "forecasting") else "scores"
        needs: Any = getattr(fn, "needs", default)
        found.append(
            custom_metric(
                fn,
                name=path.rpartition(":")[2].rpartition(".")[2],
                higher_is_better=bool(getattr(fn, "higher_is_better", True)),
                needs=needs,
            )
        )
    return found


def config_hash(
    metrics: list[Metric], *, resamples: int, seed: int, confidence: float, identity: str = ""
) -> str:
    """What makes two evaluations of one model on one suite version the same."""
    text = json.dumps(
        {
            "metrics": [m.name for m in metrics],
            "resamples": resamples,
            "seed": seed,
            "confidence": confidence,
            "identity": identity,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _check_settings(resamples: int, confidence: float) -> None:
    if not isinstance(resamples, int) or not 0 <= resamples <= 100_000:
        raise EvaluationError(
            f"resamples={resamples!r}: expected a whole number from 0 (no intervals) to 100,000."
        )
    if not 0.5 <= confidence < 1:
        raise EvaluationError(f"confidence={confidence!r}: expected a level like 0.9 or 0.95.")


def evaluate(
    suite: Suite,
    model: Any,
    *,
    client: Client,
    force: bool = False,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    label: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """See ``Suite.evaluate``."""
    from loopml.evaluation.result import EvaluationResult

    _check_settings(resamples, confidence)
    target = resolve_model(model, client, label)
    digest = _store_model(client, target)
    parts = suite.parts()
    horizons = _horizons(suite, parts)
    metrics = _metrics(suite, horizons)
    if digest is not None and not force:
        key = config_hash(metrics, resamples=resamples, seed=seed, confidence=confidence)
        found = client.find_evaluation(suite.version, digest, key)
        if found is not None:
            result = EvaluationResult.stored(found, suite, client, reused=True)
            _log_to_run(suite, result)
            return result
    y_true, predictions, test_rows = _predict(suite, target.load(), parts)
    pred_bytes = _dump_predictions(y_true, predictions, test_rows)
    identity = ""
    if digest is None:  # unstorable: the predictions identify it
        identity = hashlib.sha256(pred_bytes).hexdigest()
        digest = client.store_value(
            {"model": target.label, "stored": False, "predictions": identity}
        ).digest
    key = config_hash(
        metrics, resamples=resamples, seed=seed, confidence=confidence, identity=identity
    )
    if identity and not force:
        found = client.find_evaluation(suite.version, digest, key)
        if found is not None:
            result = EvaluationResult.stored(found, suite, client, reused=True)
            _log_to_run(suite, result)
            return result
    figures = _figures(
        suite, metrics, y_true, predictions, test_rows, resamples, seed, confidence, progress
    )
    stored_predictions = client.store_value(pred_bytes)
    stored_result = client.store_value(figures)
    evaluation = client.record_evaluation(
        Evaluation(
            id=0,
            suite=suite.label,
            model_digest=digest,
            model_label=target.label,
            run_id=target.run_id,
            config_hash=key,
            metrics={
                name: (v["value"], v["low"], v["high"])
                for name, v in ((n, _floats(v)) for n, v in figures["metrics"].items())
            },
            predictions_digest=stored_predictions.digest,
            result_digest=stored_result.digest,
            created_at=time.time(),
        ),
        replace=force,
    )
    result = EvaluationResult(evaluation, suite, client, figures, reused=False)
    result._predictions = (y_true, predictions)
    _log_to_run(suite, result)
    return result


def _floats(v: dict[str, Any]) -> dict[str, float]:
    return {k: math.nan if v[k] is None else float(v[k]) for k in ("value", "low", "high")}


def _horizons(suite: Suite, parts: list[Any]) -> int | None:
    if suite.task != "forecasting" or len(parts) < 2:
        return None
    return int(max(len(p.test) for p in parts))


# -- predicting ---------------------------------------------------------------------------


def _predict(
    suite: Suite, model: Any, parts: list[Any]
) -> tuple[np.ndarray, Predictions, np.ndarray]:
    """The test rows' truth, the model's predictions and the rows' positions (all parts)."""
    import numpy as np

    from loopml.evaluation.models import label_codes, predict

    frame = suite.frame()
    features = list(suite.options.features)
    target = suite.target
    if suite.task == "forecasting":
        return _forecast(suite, model, parts)
    rows = np.concatenate([p.test for p in parts]) if len(parts) > 1 else parts[0].test
    test = frame.iloc[rows]
    classes = suite.options.classes
    y = test[target]
    if suite.task in ("binary", "multiclass"):
        y_true = label_codes(y.to_numpy(), classes)  # the suite's classes hold every label
        present = [classes[i] for i in np.unique(y_true)]
        pred = predict(model, test[features], task=suite.task, classes=classes, test_labels=present)
    else:
        y_true = y.to_numpy(dtype=np.float64)
        pred = predict(model, test[features], task=suite.task)
    _check_finite(model, pred)
    return y_true, pred, rows


def _forecast(suite: Suite, model: Any, parts: list[Any]) -> tuple[Any, Predictions, Any]:
    """Forecasts for each part's test window, with the steps ahead of every row."""
    import numpy as np

    from loopml.evaluation.metrics import Predictions
    from loopml.evaluation.models import _library, forecast, predict

    frame = suite.frame()
    target = suite.target
    y_all = frame[target].to_numpy(dtype=np.float64)
    values, horizon, truth, rows = [], [], [], []
    statsmodels_fitted = _library(model) == "statsmodels" and hasattr(model, "forecast")
    if statsmodels_fitted and len(parts) > 1:
        raise EvaluationError(
            f"Suite {suite.label} backtests over {len(parts)} origins, so the model is refit at "
            "each: pass a function forecast(history, horizon) -> values that fits and "
            "forecasts, not a fitted statsmodels results object."
        )
    for part in parts:
        test = np.asarray(part.test)
        out: Any
        if statsmodels_fitted:
            out = np.asarray(model.forecast(len(test)), dtype=np.float64).reshape(-1)
        elif hasattr(model, "predict") and _library(model) != "statsmodels":
            X = frame.iloc[test][list(suite.options.features)]
            out = predict(model, X, task="forecasting").values
        else:
            history = frame.iloc[np.sort(np.asarray(part.train))]
            out = forecast(model, history, len(test))
        values.append(np.asarray(out, dtype=np.float64))
        horizon.append(np.arange(1, len(test) + 1))
        truth.append(y_all[test])
        rows.append(test)
    first_train = np.sort(np.asarray(parts[0].train))
    scale = _naive_scale(y_all[first_train], suite.options.season)
    pred = Predictions(values=np.concatenate(values), horizon=np.concatenate(horizon), scale=scale)
    _check_finite(model, pred)
    return np.concatenate(truth), pred, np.concatenate(rows)


def _naive_scale(history: np.ndarray, season: int) -> float:
    """MASE's scale: the in-sample MAE of the seasonal naive forecast on the training data."""
    import numpy as np

    if len(history) <= season:
        raise EvaluationError(
            f"MASE needs more than {season} training values for a seasonal naive forecast of lag "
            f"{season}; the training part has {len(history)}."
        )
    scale = float(np.mean(np.abs(history[season:] - history[:-season])))
    return scale


def _check_finite(model: Any, pred: Predictions) -> None:
    import numpy as np

    from loopml.evaluation.models import describe

    for name in ("scores", "values"):
        values = getattr(pred, name)
        if values is None:
            continue
        bad: Any = ~np.isfinite(np.asarray(values, dtype=np.float64))
        if bad.ndim > 1:
            bad = bad.any(axis=1)
        if bad.any():
            first = int(np.argmax(bad))
            raise EvaluationError(
                f"{describe(model)} returned {int(bad.sum()):,} NaN or infinite "
                f"{'probabilities' if name == 'scores' else 'predictions'} (first at test row "
                f"{first}). Fix the model or its inputs; metrics need finite predictions."
            )


# -- figures ------------------------------------------------------------------------------


def _estimates(
    metrics: list[Metric],
    y_true: np.ndarray,
    pred: Predictions,
    resamples: int,
    seed: int,
    confidence: float,
    progress: Callable[[int], None] | None,
) -> dict[str, dict[str, float | None]]:
    from loopml.evaluation.bootstrap import bootstrap
    from loopml.evaluation.metrics import compute

    if resamples == 0:
        points = compute(metrics, y_true, pred)
        return {k: {"value": _enc(v), "low": None, "high": None} for k, v in points.items()}
    found = bootstrap(
        metrics,
        y_true,
        pred,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
        progress=progress,
    )
    return {
        k: {"value": _enc(e.value), "low": _enc(e.low), "high": _enc(e.high)}
        for k, e in found.items()
    }


def _enc(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def subset(pred: Predictions, mask: np.ndarray) -> Predictions:
    """The predictions of the rows ``mask`` selects."""
    from loopml.evaluation.metrics import Predictions

    return Predictions(
        labels=None if pred.labels is None else pred.labels[mask],
        scores=None if pred.scores is None else pred.scores[mask],
        values=None if pred.values is None else pred.values[mask],
        horizon=None if pred.horizon is None else pred.horizon[mask],
        scale=pred.scale,
    )


def _figures(
    suite: Suite,
    metrics: list[Metric],
    y_true: np.ndarray,
    pred: Predictions,
    rows: np.ndarray,
    resamples: int,
    seed: int,
    confidence: float,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    """Everything the result shows, as JSON: metrics, slices, settings."""
    import numpy as np

    frame = suite.frame()
    slices_cols = list(suite.options.slices)
    groups: list[tuple[str, Any, np.ndarray]] = []
    for column in slices_cols:
        values = frame[column].to_numpy()[rows]
        keys, counts = np.unique(values.astype(str), return_counts=True)
        order = np.argsort(-counts, kind="stable")[:MAX_SLICE_VALUES]
        as_text = values.astype(str)
        for i in order:
            if counts[i] >= MIN_SLICE_ROWS:
                groups.append((column, str(keys[i]), as_text == keys[i]))
    total = resamples * (1 + len(groups))

    def tick(base: int) -> Callable[[int], None] | None:
        if progress is None:
            return None
        return lambda k: progress(base + k, total)

    overall = _estimates(metrics, y_true, pred, resamples, seed, confidence, tick(0))
    primary = suite.primary_metric
    higher = {m.name: m.higher_is_better for m in metrics}
    slices = []
    for i, (column, value, mask) in enumerate(groups):
        figures = _estimates(
            metrics,
            y_true[mask],
            subset(pred, mask),
            resamples,
            seed + 1 + i,
            confidence,
            tick(resamples * (1 + i)),
        )
        slices.append(
            {
                "column": column,
                "value": value,
                "rows": int(mask.sum()),
                "metrics": figures,
                "worse": _clearly_worse(
                    figures.get(primary), overall.get(primary), higher[primary]
                ),
            }
        )
    if progress is not None:
        progress(total, total)
    return {
        "suite": suite.label,
        "task": suite.task,
        "primary": primary,
        "higher_is_better": higher,
        "metrics": overall,
        "slices": slices,
        "test_rows": int(len(y_true)),
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "created_at": time.time(),
    }


def _clearly_worse(
    figures: dict[str, float | None] | None, overall: dict[str, float | None] | None, higher: bool
) -> bool:
    """A slice is clearly worse when its whole interval lies on the bad side of the model's
    overall figure."""
    if not figures or not overall or overall["value"] is None:
        return False
    bound = figures["high"] if higher else figures["low"]
    if bound is None:
        return False
    return bound < overall["value"] if higher else bound > overall["value"]


# -- the predictions as bytes -------------------------------------------------------------


def _dump_predictions(y_true: np.ndarray, pred: Predictions, rows: np.ndarray) -> bytes:
    import numpy as np

    arrays: dict[str, Any] = {"y_true": y_true, "rows": np.asarray(rows, dtype="<i8")}
    for name in ("labels", "scores", "values", "horizon"):
        value = getattr(pred, name)
        if value is not None:
            arrays[name] = np.asarray(value)
    if pred.scale is not None:
        arrays["scale"] = np.array(pred.scale, dtype=np.float64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_predictions(data: bytes) -> tuple[np.ndarray, Predictions, np.ndarray]:
    """Stored predictions -> (truth, predictions, test row positions)."""
    import numpy as np

    from loopml.evaluation.metrics import Predictions

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        found = {k: npz[k] for k in npz.files}
    return (
        found["y_true"],
        Predictions(
            labels=found.get("labels"),
            scores=found.get("scores"),
            values=found.get("values"),
            horizon=found.get("horizon"),
            scale=float(found["scale"]) if "scale" in found else None,
        ),
        found["rows"],
    )


def _log_to_run(suite: Suite, result: EvaluationResult) -> None:
    """Inside a run, the figures go to it: ``<suite>.<metric>`` with ``.low``/``.high``."""
    from loopml.tracking.context import active_run

    run = active_run()
    if run is None:
        return
    logged: dict[str, float] = {}
    for name, (value, low, high) in result.evaluation.metrics.items():
        logged[f"{suite.name}.{name}"] = value
        if not math.isnan(low):
            logged[f"{suite.name}.{name}.low"] = low
            logged[f"{suite.name}.{name}.high"] = high
    run.log_metrics(logged)
    run.set_tag(f"evaluation.{suite.name}", f"#{result.evaluation.id} on {suite.label}")
