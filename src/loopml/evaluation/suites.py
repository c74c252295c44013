"""Defining suites, and the ``Suite`` object users train and evaluate with.

``create_suite("churn-holdout", data="churn@3", target="churned", task="binary",
split="stratified:test=0.2,seed=7", slices=["region"])`` freezes a dataset version, the split
and the metrics: the split runs once, here, and its row indices are stored with the suite
(an artifact) so every later evaluation uses exactly those rows, whatever changes in the
splitting code. Defining the same name again with another definition adds a version; the
same definition again returns the existing one.

``Suite.train()`` and ``Suite.validation()`` hand out their parts; the test rows are never
handed to training code through this API: only ``Suite.evaluate`` reads them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.evaluation.errors import EvaluationError
from loopml.store.suites import SuiteVersion, check_suite_name

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from loopml.evaluation.compare import Comparison, Leaderboard
    from loopml.evaluation.result import EvaluationResult
    from loopml.evaluation.splits import Part
    from loopml.tracking.client import Client

TASKS = ("binary", "multiclass", "regression", "forecasting")
DEFAULT_SPLIT = {
    "binary": "stratified:test=0.2,seed=0",
    "multiclass": "stratified:test=0.2,seed=0",
    "regression": "random:test=0.2,seed=0",
    "forecasting": "time:test=0.2",
}
# What a leaderboard ranks by unless told otherwise.
PRIMARY_METRIC = {
    "binary": "roc_auc",
    "multiclass": "macro_f1",
    "regression": "rmse",
    "forecasting": "mase",
}
MAX_CLASSES = 1000


def _client(client: Client | None) -> Client:
    from loopml.tracking.client import given_or_default

    return given_or_default(client)


@dataclass(frozen=True)
class SuiteOptions:
    """What a suite fixes besides data, target, task and split (stored as JSON)."""

    features: tuple[str, ...]  # the columns a model sees, in order
    slices: tuple[str, ...] = ()
    threshold: float = 0.5  # binary: score at or above -> positive
    classes: tuple[Any, ...] = ()  # classification: the target's values; codes are positions
    metrics: tuple[str, ...] = ()  # custom metrics, "module:function"
    season: int = 1  # forecasting: the naive forecast's lag for MASE's scale
    time: str | None = None  # forecasting: the time column, if any

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "slices": list(self.slices),
            "threshold": self.threshold,
            "classes": [_jsonable(c) for c in self.classes],
            "metrics": list(self.metrics),
            "season": self.season,
            "time": self.time,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteOptions:
        return cls(
            features=tuple(data["features"]),
            slices=tuple(data.get("slices", ())),
            threshold=float(data.get("threshold", 0.5)),
            classes=tuple(data.get("classes", ())),
            metrics=tuple(data.get("metrics", ())),
            season=int(data.get("season", 1)),
            time=data.get("time"),
        )


def _jsonable(value: Any) -> Any:
    """A class label as JSON keeps it (numpy scalars become Python ones)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


class Suite:
    """One frozen suite version: its data, split and metrics, and what to do with them.

    Get one with ``loopml.suite("churn-holdout")`` (the newest version) or
    ``loopml.suite("churn-holdout@2")``.
    """

    def __init__(self, version: SuiteVersion, client: Client) -> None:
        self.version = version
        self.options = SuiteOptions.from_dict(version.options)
        self._client = client
        self._frame: pd.DataFrame | None = None
        self._parts: list[Part] | None = None

    # -- what it is -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def label(self) -> str:
        return self.version.label

    @property
    def task(self) -> str:
        return self.version.task

    @property
    def target(self) -> str:
        return self.version.target

    @property
    def split(self) -> str:
        return self.version.split

    @property
    def dataset(self) -> str:
        return self.version.dataset

    @property
    def primary_metric(self) -> str:
        return PRIMARY_METRIC[self.task]

    def __repr__(self) -> str:
        return (
            f"Suite({self.label!r}, data={self.dataset!r}, target={self.target!r}, "
            f"task={self.task!r}, split={self.split!r})"
        )

    # -- data -----------------------------------------------------------------------------

    def frame(self) -> pd.DataFrame:
        """The whole dataset version (read once per object; recorded as a run input)."""
        if self._frame is None:
            from loopml.data.datasets import Dataset

            self._frame = Dataset(self.dataset).frame(self._client)
        return self._frame

    def parts(self) -> list[Part]:
        """The frozen split: row positions of each part (one part, or one per fold)."""
        if self._parts is None:
            self._parts = load_parts(self._client.load_artifact(self.version.indices_digest))
        return self._parts

    def _xy(self, rows: np.ndarray) -> tuple[pd.DataFrame, pd.Series]:
        frame = self.frame()
        part = frame.iloc[rows]
        return part[list(self.options.features)], part[self.target]

    def train(self, fold: int = 0) -> tuple[pd.DataFrame, pd.Series]:
        """``X_train, y_train``: the training rows (of fold ``fold`` for rolling splits)."""
        return self._xy(self._part(fold).train)

    def validation(self, fold: int = 0) -> tuple[pd.DataFrame, pd.Series]:
        """``X_val, y_val``: the validation rows, when the split has them.

        Raises:
            EvaluationError: the split has no validation part.
        """
        rows = self._part(fold).validation
        if rows is None:
            raise EvaluationError(
                f"Suite {self.label} has no validation part (split {self.split!r}). Define a "
                "new version with one, e.g. --split 'stratified:test=0.2,validation=0.1,seed=0'."
            )
        return self._xy(rows)

    def _part(self, fold: int) -> Part:
        parts = self.parts()
        if not 0 <= fold < len(parts):
            raise EvaluationError(
                f"Suite {self.label} has {len(parts)} fold(s); fold {fold} does not exist "
                f"(use 0..{len(parts) - 1})."
            )
        return parts[fold]

    # -- judging models -------------------------------------------------------------------

    def evaluate(
        self,
        model: Any,
        *,
        force: bool = False,
        resamples: int = 1000,
        seed: int = 0,
        confidence: float = 0.95,
        label: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> EvaluationResult:
        """Judge ``model`` on the test rows; the result is stored and reused.

        ``model`` is a fitted model (scikit-learn, XGBoost, LightGBM, statsmodels results, any
        object with ``predict``/``predict_proba``, or a callable ``f(X) -> predictions``; for a
        rolling-origin suite, ``f(history, horizon) -> forecasts``), the digest of a stored
        model, or ``"RUN:OUTPUT"`` (a step output of a run, e.g. ``"train#3:train"``).
        Judging the same model with the same settings again returns the stored result
        unless ``force``. Inside a run, the metrics and their intervals are logged to it.
        """
        from loopml.evaluation.evaluate import evaluate

        return evaluate(
            self,
            model,
            client=self._client,
            force=force,
            resamples=resamples,
            seed=seed,
            confidence=confidence,
            label=label,
            progress=progress,
        )

    def evaluations(self) -> list[EvaluationResult]:
        """Every stored evaluation on this suite version, oldest first."""
        from loopml.evaluation.result import EvaluationResult

        return [
            EvaluationResult.stored(e, self, self._client)
            for e in self._client.evaluations(self.version)
        ]

    def leaderboard(self, *, metric: str | None = None, confidence: float = 0.95) -> Leaderboard:
        """The evaluated models ranked by ``metric``, with statistically tied groups."""
        from loopml.evaluation.compare import leaderboard

        return leaderboard(self, metric=metric, confidence=confidence)

    def compare(
        self, a: Any, b: Any, *, resamples: int = 1000, seed: int = 0, confidence: float = 0.95
    ) -> Comparison:
        """Paired comparison of two models on this suite's test rows (evaluated if needed)."""
        from loopml.evaluation.compare import compare

        return compare(self, a, b, resamples=resamples, seed=seed, confidence=confidence)


def suite(ref: str, *, client: Client | None = None) -> Suite:
    """The suite version ``NAME``, ``NAME@latest`` or ``NAME@N`` names."""
    c = _client(client)
    return Suite(c.suite_version(ref), c)


def create_suite(
    name: str,
    *,
    data: str | os.PathLike[str] | Any,
    target: str,
    task: str,
    split: str | None = None,
    slices: Sequence[str] = (),
    features: Sequence[str] | None = None,
    threshold: float = 0.5,
    metrics: Sequence[str | Callable[..., float]] = (),
    season: int = 1,
    client: Client | None = None,
) -> tuple[Suite, bool]:
    """Define (or find) a suite version; returns it and whether it is new.

    ``data`` is a dataset reference (``"churn@3"``), a CSV/Parquet/JSON-lines path or a
    DataFrame (both added as a version of the dataset named like the suite). ``split`` is
    the split's text (see ``loopml.evaluation.splits``; default: stratified for
    classification, random for regression, the last 20 % in time for forecasting).
    ``features`` default to every column except the target and the split's group or time
    column. ``metrics`` adds custom metrics, as ``"module:function"`` or importable functions
    ``f(y_true, y_pred) -> float``.

    Raises:
        EvaluationError: an unknown task, a missing column, a target that does not fit the
            task, a split that leaves a part empty; each message names the fix.
    """
    check_suite_name(name)
    c = _client(client)
    if task not in TASKS:
        raise EvaluationError(f"Task {task!r} is not one of {', '.join(TASKS)}.")
    version = _dataset_version(c, name, data)
    from loopml.data.datasets import Dataset
    from loopml.evaluation.splits import SplitSpec, digest
    from loopml.evaluation.splits import split as make_split

    frame = Dataset(version.label).frame(c)
    spec = SplitSpec.parse(split or DEFAULT_SPLIT[task])
    _check_target(frame, target, task, version.label)
    split_column = getattr(spec, "column", None)
    if features is None:
        excluded = {target, split_column}
        features = [str(col) for col in frame.columns if col not in excluded]
    _check_columns(frame, [*features, *slices], version.label, what="feature or slice")
    if not features:
        raise EvaluationError(
            f"{version.label} has no column besides the target {target!r}: a model needs "
            "at least one feature."
        )
    if task == "binary" and not 0 < threshold < 1:
        raise EvaluationError(f"Threshold {threshold}: expected a number between 0 and 1.")
    if season < 1:
        raise EvaluationError(f"Season {season}: expected a positive whole number of steps.")
    parts = make_split(spec, frame, target=target)
    classes: tuple[Any, ...] = ()
    if task in ("binary", "multiclass"):
        classes = tuple(_jsonable(v) for v in sorted(frame[target].dropna().unique().tolist()))
    options = SuiteOptions(
        features=tuple(str(f) for f in features),
        slices=tuple(str(s) for s in slices),
        threshold=float(threshold),
        classes=classes,
        metrics=tuple(metric_path(m) for m in metrics),
        season=int(season),
        time=split_column if task == "forecasting" else None,
    )
    for path in options.metrics:
        resolve_metric(path)  # fail now, not at the first evaluation
    definition = {
        "dataset": version.digest,
        "target": target,
        "task": task,
        "split": str(spec),
        "options": options.to_dict(),
    }
    definition_hash = hashlib.sha256(
        json.dumps(definition, sort_keys=True, default=str).encode()
    ).hexdigest()
    indices = c.store_value(dump_parts(parts))
    stored, created = c.add_suite_version(
        SuiteVersion(
            name=name,
            number=0,
            dataset_name=version.name,
            dataset_number=version.number,
            dataset_digest=version.digest,
            target=target,
            task=task,
            split=str(spec),
            options=options.to_dict(),
            indices_digest=indices.digest,
            indices_hash=digest(parts),
            definition_hash=definition_hash,
            test_rows=int(sum(len(p.test) for p in parts)),
            created_at=time.time(),
        )
    )
    made = Suite(stored, c)
    made._frame = frame
    if created:  # else the stored indices rule (the splitting code may have changed since)
        made._parts = parts
    return made, created


def _dataset_version(c: Client, name: str, data: Any) -> Any:
    """``data`` as a stored dataset version: a reference as is, a path or frame added."""
    from loopml.data.datasets import add_dataset

    if isinstance(data, str) and _looks_like_ref(data):
        return c.dataset_version(data)
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.exists():
            raise EvaluationError(
                f"Data {str(data)!r} is neither a dataset version (`loopml data list`) nor an "
                "existing file. Give NAME@N or the path of a CSV, Parquet or JSON lines file."
            )
    version, _ = add_dataset(data, name=name, client=c)
    return version


def _looks_like_ref(text: str) -> bool:
    from loopml.data.tables import SUFFIXES

    path = Path(text)
    return (
        not path.exists()
        and "/" not in text
        and os.sep not in text
        and (path.suffix.lower() not in SUFFIXES)
    )


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], where: str, *, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = ", ".join(repr(str(c)) for c in list(frame.columns)[:30])
        raise EvaluationError(f"{where} has no {what} column {missing[0]!r}. Its columns: {shown}.")


def _check_target(frame: pd.DataFrame, target: str, task: str, where: str) -> None:
    """The target exists, has no missing values, and fits the task."""
    import pandas as pd

    if target not in frame.columns:
        shown = ", ".join(repr(str(c)) for c in list(frame.columns)[:30])
        raise EvaluationError(
            f"{where} has no target column {target!r}. Its columns: {shown}. "
            "Pass the column to predict with --target."
        )
    y = frame[target]
    missing = int(y.isna().sum())
    if missing:
        first = int(y.isna().to_numpy().argmax())
        raise EvaluationError(
            f"Target {target!r} of {where} has {missing:,} missing value(s) (first at row "
            f"{first}). Drop or fill those rows and add the data as a new version."
        )
    distinct = int(y.nunique())
    if task == "binary" and distinct != 2:
        hint = "use --task multiclass" if distinct > 2 else "a binary target needs two classes"
        raise EvaluationError(
            f"Task binary needs a target with exactly 2 values; {target!r} of {where} has "
            f"{distinct}: {hint}."
        )
    if task == "multiclass" and not 2 <= distinct <= MAX_CLASSES:
        raise EvaluationError(
            f"Task multiclass needs 2 to {MAX_CLASSES} classes; {target!r} of {where} has "
            f"{distinct}."
            + (" Use --task regression for a numeric target." if distinct > MAX_CLASSES else "")
        )
    if task in ("regression", "forecasting") and not pd.api.types.is_numeric_dtype(y):
        raise EvaluationError(
            f"Task {task} needs a numeric target; {target!r} of {where} is {y.dtype}. "
            "Use --task binary or multiclass for labels."
        )


# -- custom metrics -----------------------------------------------------------------------


def metric_path(metric: str | Callable[..., float]) -> str:
    """A custom metric as its import path ``module:function`` (how a suite stores it)."""
    if isinstance(metric, str):
        return metric
    module = getattr(metric, "__module__", None)
    qualname = getattr(metric, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise EvaluationError(
            f"Custom metric {metric!r}: a suite stores metrics by import path, so use a "
            "function defined at the top level of a module (not a lambda or a nested function)."
        )
    return f"{module}:{qualname}"


def resolve_metric(path: str, what: str = "Custom metric") -> Callable[..., Any]:
    """Import ``module:function`` (a custom metric, or ``what`` else takes functions so).

    Raises:
        EvaluationError: the path is malformed or cannot be imported.
    """
    import importlib

    module, _, attr = path.partition(":")
    if not module or not attr:
        raise EvaluationError(
            f"{what} {path!r}: expected 'module:function', e.g. 'metrics:top_decile_lift'."
        )
    try:
        found: Any = importlib.import_module(module)
        for part in attr.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise EvaluationError(
            f"{what} {path!r} cannot be imported ({exc}). Check the module is on the "
            "Python path (the project folder is) and the function exists."
        ) from None
    if not callable(found):
        raise EvaluationError(f"{what} {path!r} is not a function.")
    return found  # type: ignore[no-any-return]


# -- the frozen split as bytes ----------------------------------------------------------


def dump_parts(parts: Sequence[Part]) -> bytes:
    """The parts' row positions as one ``.npz`` (how a suite stores its split)."""
    import numpy as np

    arrays: dict[str, np.ndarray] = {}
    names = []
    for i, part in enumerate(parts):
        names.append(part.name)
        arrays[f"train_{i}"] = np.asarray(part.train, dtype="<i8")
        arrays[f"test_{i}"] = np.asarray(part.test, dtype="<i8")
        if part.validation is not None:
            arrays[f"validation_{i}"] = np.asarray(part.validation, dtype="<i8")
    arrays["names"] = np.array(json.dumps(names))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def load_parts(data: bytes) -> list[Part]:
    import numpy as np

    from loopml.evaluation.splits import Part

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        names = json.loads(str(npz["names"]))
        return [
            Part(
                train=npz[f"train_{i}"],
                test=npz[f"test_{i}"],
                validation=npz.get(f"validation_{i}"),
                name=name,
            )
            for i, name in enumerate(names)
        ]
