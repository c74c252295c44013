"""Exporting a registered model version: an ONNX file with its parity and speed, or a Docker
build context that serves it.

``export_onnx("churn@4", "churn.onnx")`` converts the version, checks parity against the
native model on sample rows (see ``serving.onnx.sample_rows``), optionally quantizes it to
int8 and measures what that costs on the model's evaluation suite, and times native, ONNX
and int8 in this process. A version whose parity fails is still written: the result says so
and ``loopml export`` exits non-zero unless ``--allow-mismatch``.

``export_docker("churn@production", "serve-image/")`` writes a folder ``docker build`` takes:
a Dockerfile, pinned requirements, and a store of its own holding only that version, under
the same number and digest.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import ConflictError, InvalidParameterError, LoopmlError
from loopml.serving.onnx import (
    OnnxRunner,
    Parity,
    convert,
    frame_columns,
    native_predict,
    operator_types,
    parity,
    quantize_int8,
    quantized_ops,
    sample_rows,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from loopml.registry.schema import ModelSchema
    from loopml.store.models import ModelVersion
    from loopml.tracking.client import Client

__all__ = ["Latency", "OnnxExport", "ScoreChange", "export_docker", "export_onnx"]

QUANTIZE = ("int8",)
BATCH_ROWS = 1000


@dataclass(frozen=True)
class Latency:
    """Median time of one call on one row and on a batch, in this process."""

    runtime: str  # native | onnx | onnx-int8
    single_row_ms: float
    batch_ms: float
    batch_rows: int

    @property
    def rows_per_s(self) -> float:
        return self.batch_rows / (self.batch_ms / 1000) if self.batch_ms > 0 else float("inf")


@dataclass(frozen=True)
class ScoreChange:
    """The main metric of the native, ONNX and int8 models on the same rows."""

    metric: str
    source: str  # which rows, and against what
    native: float
    onnx: float
    quantized: float
    higher_is_better: bool

    @property
    def change(self) -> float:
        """``quantized - native``: what int8 costs (negative is worse when higher is better)."""
        return self.quantized - self.native

    def __str__(self) -> str:
        return (
            f"{self.metric}: native {self.native:.6g}, onnx {self.onnx:.6g}, int8 "
            f"{self.quantized:.6g} (change {self.change:+.3g}) on {self.source}"
        )


@dataclass(frozen=True)
class OnnxExport:
    """What ``export_onnx`` wrote and what it measured."""

    version: str  # NAME@N
    path: Path
    size: int  # bytes written
    float_size: int  # bytes of the float (unquantized) model
    parity: Parity  # native vs ONNX (float)
    sample: str  # where the parity rows came from
    quantized: bool
    quantized_parity: Parity | None
    quantize_note: str | None
    score: ScoreChange | None
    latency: tuple[Latency, ...]

    @property
    def ok(self) -> bool:
        """Whether the float model matches the native one (int8 is lossy by design)."""
        return self.parity.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "path": str(self.path),
            "size": self.size,
            "float_size": self.float_size,
            "ok": self.ok,
            "parity": self.parity.to_dict(),
            "sample": self.sample,
            "quantized": self.quantized,
            "quantized_parity": None
            if self.quantized_parity is None
            else self.quantized_parity.to_dict(),
            "quantize_note": self.quantize_note,
            "score": None
            if self.score is None
            else {**self.score.__dict__, "change": self.score.change},
            "latency": [{**t.__dict__, "rows_per_s": t.rows_per_s} for t in self.latency],
        }


def _client(client: Client | None) -> Client:
    from loopml.tracking.client import given_or_default

    return given_or_default(client)


# -- ONNX -----------------------------------------------------------------------------------


def export_onnx(
    ref: str,
    out: str | os.PathLike[str],
    *,
    quantize: str | None = None,
    client: Client | None = None,
    tolerance: float = 1e-4,
    force: bool = False,
    repeats: int = 100,
) -> OnnxExport:
    """Write the ONNX model of a registered version to ``out``, with its parity and speed.

    Args:
        ref: the version, e.g. ``"churn@4"`` or ``"churn@production"``.
        out: the file to write.
        quantize: ``None``, or ``"int8"`` to write a dynamically quantized model; the result
            then holds its parity, its change on the model's suite (the newest suite the
            version was evaluated on; without one, on the parity rows against the native
            predictions, and ``score.source`` says so) and its speed.
        client: the store (default: the project's).
        tolerance: the parity tolerance (see ``serving.onnx.Parity``).
        force: overwrite ``out`` if it exists.
        repeats: timed calls per single-row figure (a tenth of that, at least 5, per batch),
            or as many as fit in half a second.

    Returns:
        An :class:`OnnxExport`; ``ok`` is false when parity failed (the file is written all
        the same).

    Raises:
        InvalidParameterError: an unknown ``quantize``; the model does not convert; it has
            no input schema and none can be read off it.
        NotFoundError: no such version.
        ConflictError: ``out`` exists and ``force`` is false.

    Example:
        >>> result = export_onnx("churn@4", "churn.onnx", quantize="int8")  # doctest: +SKIP
        >>> print(result.parity)                                            # doctest: +SKIP
    """
    if quantize is not None and quantize not in QUANTIZE:
        from loopml.errors import did_you_mean

        raise InvalidParameterError(
            f"export_onnx quantize: got {quantize!r}; expected None or one of "
            f"{list(QUANTIZE)}.{did_you_mean(str(quantize), QUANTIZE)}"
        )
    target = Path(out)
    if target.exists() and not force:
        raise ConflictError(f"{str(target)!r} exists; pass force=True (--force) to replace it.")
    c = _client(client)
    version = c.model_version(ref)
    model = c.load_artifact(version.digest)
    schema = _schema(version, model)
    data = convert(model, schema)
    runner = OnnxRunner(data)
    frame = sample_rows(c, version, schema=schema)
    checked = parity(model, runner, frame, tolerance=tolerance)
    written, qrunner, qparity, note, score = data, None, None, None, None
    if quantize == "int8":
        written = quantize_int8(data)
        count = quantized_ops(written)
        if count == 0:
            note = (
                "nothing quantized: the model's operators "
                f"({', '.join(operator_types(data))}) have no int8 kernels in ONNX Runtime, so "
                "the file written is the float model"
            )
            qrunner = runner
        else:
            note = f"{count} operators run in int8"
            qrunner = OnnxRunner(written)
        qparity = parity(model, qrunner, frame, tolerance=tolerance)
        score = _score_change(c, version, schema, model, runner, qrunner, frame)
    latency = _latencies(model, runner, qrunner, frame, repeats)
    _write_atomic(target, written)
    return OnnxExport(
        version=version.label,
        path=target,
        size=len(written),
        float_size=len(data),
        parity=checked,
        sample=str(frame.attrs.get("source", f"{len(frame):,} rows")),
        quantized=quantize is not None,
        quantized_parity=qparity,
        quantize_note=note,
        score=score,
        latency=latency,
    )


def _schema(version: ModelVersion, model: Any) -> ModelSchema:
    """The version's input schema, or float columns named by the model itself (a booster
    registered from a file records no schema, but knows its feature names)."""
    from loopml.registry.schema import ColumnSpec, ModelSchema

    if version.input_schema is not None:
        return ModelSchema.from_dict(version.input_schema)
    names: Any = None
    if type(model).__name__ == "Booster":
        names = getattr(model, "feature_names", None)  # xgboost.Booster
        if names is None and callable(getattr(model, "feature_name", None)):
            names = model.feature_name()  # lightgbm.Booster
    if not names:
        raise InvalidParameterError(
            f"{version.label} has no input schema, so its ONNX inputs are unknown. Register it "
            "again with X= the frame it was trained on."
        )
    return ModelSchema(tuple(ColumnSpec(str(n), "float", nullable=True) for n in names))


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


class _Runnable:
    """An ONNX runner seen as a model (``predict``, ``predict_proba``, ``classes_``), so the
    evaluation code judges it exactly as it judges the native one."""

    def __init__(self, runner: OnnxRunner) -> None:
        import numpy as np

        self.runner = runner
        if runner.task == "classifier" and runner.classes is not None:
            self.classes_ = np.asarray(runner.classes)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.runner.predict_frame(X)[0]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        probabilities = self.runner.predict_frame(X)[1]
        assert probabilities is not None
        return probabilities


def _runnable(runner: OnnxRunner) -> Any:
    if runner.task == "classifier":
        return _Runnable(runner)

    class Values:  # predict only: evaluated as the native regressor or booster is
        def predict(self, X: pd.DataFrame) -> np.ndarray:
            return runner.predict_frame(X)[0]

    return Values()


def _score_change(
    c: Client,
    version: ModelVersion,
    schema: ModelSchema,
    model: Any,
    runner: OnnxRunner,
    qrunner: OnnxRunner,
    frame: pd.DataFrame,
) -> ScoreChange:
    """The suite's main metric for native, ONNX and int8, or agreement on the parity rows."""
    found = _on_suite(c, version, schema, model, runner, qrunner)
    if found is not None:
        return found
    import numpy as np

    native, _ = native_predict(model, frame[runner.columns])
    native = np.asarray(native)
    got = [r.predict_frame(frame)[0] for r in (runner, qrunner)]
    where = f"the {len(frame):,} parity rows, against the native predictions (no suite evaluation)"
    if runner.task == "classifier":
        agree = [float((np.asarray(g) == native).mean()) for g in got]
        return ScoreChange("label agreement", where, 1.0, agree[0], agree[1], True)
    errors = [float(np.sqrt(np.mean((np.asarray(g, dtype=np.float64) - native) ** 2))) for g in got]
    return ScoreChange("rmse vs native", where, 0.0, errors[0], errors[1], False)


def _on_suite(
    c: Client,
    version: ModelVersion,
    schema: ModelSchema,
    model: Any,
    runner: OnnxRunner,
    qrunner: OnnxRunner,
) -> ScoreChange | None:
    import numpy as np

    from loopml.evaluation.metrics import compute, default_metrics
    from loopml.evaluation.models import label_codes, predict
    from loopml.evaluation.suites import suite as get_suite
    from loopml.registry.schema import check_input

    for evaluation in reversed(c.model_evaluations(version.digest)):
        try:
            s = get_suite(evaluation.suite, client=c)
            if s.task == "forecasting":
                continue
            parts = s.parts()
            rows = np.concatenate([p.test for p in parts])
            test = s.frame().iloc[rows]
            X = check_input(test, schema)
        except LoopmlError:
            continue  # the suite is gone or its rows no longer fit: try an older one
        primary = s.primary_metric
        defaults = default_metrics(s.task, threshold=s.options.threshold)  # type: ignore[arg-type]
        metric = [m for m in defaults if m.name == primary]
        values = []
        if s.task in ("binary", "multiclass"):
            classes = s.options.classes
            y_true = label_codes(test[s.target].to_numpy(), classes)
            present = [classes[i] for i in np.unique(y_true)]
            for candidate in (model, _runnable(runner), _runnable(qrunner)):
                pred = predict(candidate, X, task=s.task, classes=classes, test_labels=present)
                values.append(compute(metric, y_true, pred)[primary])
        else:
            y_true = test[s.target].to_numpy(dtype=np.float64)
            for candidate in (model, _runnable(runner), _runnable(qrunner)):
                pred = predict(candidate, X, task=s.task)
                values.append(compute(metric, y_true, pred)[primary])
        return ScoreChange(
            primary,
            f"suite {s.label} ({len(rows):,} test rows)",
            values[0],
            values[1],
            values[2],
            metric[0].higher_is_better,
        )
    return None


def _latencies(
    model: Any,
    runner: OnnxRunner,
    qrunner: OnnxRunner | None,
    frame: pd.DataFrame,
    repeats: int,
) -> tuple[Latency, ...]:
    """Native (``predict``, plus ``predict_proba`` for a classifier: what serving answers)
    against ONNX, which gives both in one call; inputs are prepared before timing."""
    import pandas as pd

    one = frame.iloc[:1][runner.columns]
    copies = -(-BATCH_ROWS // len(frame))
    batch = pd.concat([frame[runner.columns]] * copies, ignore_index=True).iloc[:BATCH_ROWS]
    batch_repeats = max(5, repeats // 10)
    rows: list[Latency] = [
        Latency(
            "native",
            _median_ms(lambda: native_predict(model, one), repeats),
            _median_ms(lambda: native_predict(model, batch), batch_repeats),
            len(batch),
        )
    ]
    one_columns, batch_columns = (
        frame_columns(one, runner.columns),
        frame_columns(batch, runner.columns),
    )
    runners = [("onnx", runner)]
    if qrunner is not None and qrunner is not runner:
        runners.append(("onnx-int8", qrunner))
    for name, r in runners:
        rows.append(
            Latency(
                name,
                _median_ms(lambda r=r: r.predict(one_columns), repeats),  # type: ignore[misc]
                _median_ms(lambda r=r: r.predict(batch_columns), batch_repeats),  # type: ignore[misc]
                len(batch),
            )
        )
    return tuple(rows)


def _median_ms(call: Callable[[], Any], repeats: int, budget_s: float = 0.5) -> float:
    """Median of ``repeats`` calls, or of those that fit in ``budget_s`` (at least 5): a
    slow native model must not make an export wait minutes for its figures."""
    call()  # warm: first-call allocations are not what a server pays per request
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < max(1, repeats) and (len(times) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


# -- Docker ---------------------------------------------------------------------------------

DOCKERFILE = """\
# Serves {label} with `loopml serve` on port 8000.
# Build:  docker build -t {image} .
# Run:    docker run -p 8000:8000 -e LOOPML_SERVE_TOKEN=<secret> {image}
#
# Inside the container the server binds 0.0.0.0 (not loopback), and loopml refuses to bind
# anything but loopback without a token: the CMD reads it from LOOPML_SERVE_TOKEN, and the
# container stops at once with a message if it is unset. Clients send it as a bearer token.
FROM python:3.11-slim
{system}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 loopml
WORKDIR /srv/model
COPY requirements.txt .
RUN pip install -r requirements.txt
# loopml.toml points at store/: the one model version, and where predictions are logged.
COPY --chown=loopml:loopml . .
USER loopml
EXPOSE 8000
CMD ["sh", "-c", "exec loopml serve {label} --host 0.0.0.0 --port 8000 --token \\"${{LOOPML_SERVE_TOKEN:?set LOOPML_SERVE_TOKEN: docker run -e LOOPML_SERVE_TOKEN=...}}\\""]
"""

DOCKERIGNORE = """\
# Only the Dockerfile's inputs: requirements, loopml.toml and the store.
**/__pycache__
**/*.pyc
.git
*.onnx
store/tmp
store/blobs/tmp
"""

README = """\
# Serving image for {label}

Made by `loopml export {label} --format docker`. This folder is a Docker build context:

- `Dockerfile`: python:3.11-slim, a non-root user, `loopml serve {label}` on port 8000;
- `requirements.txt`: loopml with its serve and onnx extras, and {library} at the version
  the model was trained with;
- `loopml.toml` and `store/`: a store holding only {label} (same number, same digest,
  same input schema). Its run and training-data links stay in the store it came from.

Build and run:

```bash
docker build -t {image} .
docker run -p 8000:8000 -e LOOPML_SERVE_TOKEN=change-me {image}
curl -H 'Authorization: Bearer change-me' localhost:8000/schema
```

The server binds 0.0.0.0 inside the container, so it needs a token: it reads
`LOOPML_SERVE_TOKEN`, and the container exits at once with a message when it is unset.
Predictions are logged to `store/` inside the container; mount a volume on
`/srv/model/store` to keep them.
"""

LOOPML_TOML = """\
[project]
name = "{name}-serving"

[store]
uri = "store/store.db"
artifacts = "store/blobs"
"""

# The pip distribution of each library a model version records (``ModelVersion.library``).
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "statsmodels": "statsmodels",
}


def export_docker(
    ref: str,
    out_dir: str | os.PathLike[str],
    *,
    client: Client | None = None,
    force: bool = False,
) -> Path:
    """Write a Docker build context that serves the version ``ref``; returns the folder.

    The context holds a Dockerfile, ``requirements.txt`` (loopml's serve and onnx extras at
    this loopml's version, and the model's library at the version recorded on the model
    version), ``.dockerignore``, ``README.md``, ``loopml.toml`` and ``store/``: a new store
    holding only this version. Its artifact bytes are copied (verified, same digest) and
    its record is registered again with the same number, schema and metadata; the links to
    its run and datasets are dropped, as those are not in the new store.

    Raises:
        ConflictError: ``out_dir`` is not empty and ``force`` is false.
        InvalidParameterError: ``out_dir`` is a file.
        NotFoundError: no such version.
    """
    import shutil

    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise InvalidParameterError(f"{str(folder)!r} is a file; give a folder for the context.")
    if folder.exists() and any(folder.iterdir()):
        if not force:
            raise ConflictError(
                f"{str(folder)!r} is not empty; pass force=True (--force) to write into it, "
                "or give a new folder."
            )
        shutil.rmtree(folder / "store", ignore_errors=True)  # never mix in an older store
    c = _client(client)
    version = c.model_version(ref)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loopml.toml").write_text(LOOPML_TOML.format(name=version.name))
    bundled = _bundle(c, version, folder)
    label = bundled.label
    image = f"{version.name.lower()}-{version.number}"
    system = ""
    if version.library in ("xgboost", "lightgbm"):  # their wheels need OpenMP's runtime
        system = (
            "RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 "
            "&& rm -rf /var/lib/apt/lists/*"
        )
    (folder / "Dockerfile").write_text(DOCKERFILE.format(label=label, image=image, system=system))
    (folder / "requirements.txt").write_text(requirements(version))
    (folder / ".dockerignore").write_text(DOCKERIGNORE)
    library = DISTRIBUTIONS.get(version.library, version.library)
    (folder / "README.md").write_text(README.format(label=label, image=image, library=library))
    return folder


def requirements(version: ModelVersion) -> str:
    """``requirements.txt`` for serving ``version``: loopml pinned, and its model library."""
    import importlib.metadata

    try:
        loopml_version = importlib.metadata.version("loopml")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        loopml_version = ""
    pin = f"=={loopml_version}" if loopml_version else ""
    lines = [
        "# loopml serve, and ONNX Runtime for models that export with parity",
        f"loopml[serve,onnx]{pin}",
    ]
    dist = DISTRIBUTIONS.get(version.library)
    if dist is not None:
        lines.append(f"# the library {version.label} was trained with, at its version")
        lines.append(f"{dist}=={version.library_version}")
    return "\n".join(lines) + "\n"


def _bundle(c: Client, version: ModelVersion, folder: Path) -> ModelVersion:
    """A store under ``folder/store`` holding ``version`` alone, under its own number.

    The registry numbers versions itself (the next after the highest), and that is the
    rule everywhere else, so the record is not written around it with SQL. Instead the
    numbers below are taken by placeholder versions (a few bytes each) which are deleted
    once the real one is registered, and their blobs collected: what stays is the one
    version, numbered as in the source store.
    """
    from loopml.config import load_settings
    from loopml.tracking.client import Client

    store = (folder / "store").resolve()
    dest = Client(
        load_settings(folder),
        store_uri=str(store / "store.db"),
        artifacts_uri=str(store / "blobs"),
    ).open()
    try:
        models = dest.metadata.models
        record = c.artifact(version.digest)
        for number in range(1, version.number):
            placeholder = dest.store_value({"placeholder": number, "of": version.label})
            models.register(
                replace(version, digest=placeholder.digest, run_id=None, aliases=(), datasets=())
            )
        dest.metadata.lineage.reserve([record])
        dest.artifacts.fetch(c.artifacts.backend, version.digest)
        bundled, _ = models.register(replace(version, run_id=None, aliases=(), datasets=()))
        for number in range(1, version.number):
            dest.delete_model_version(f"{version.name}@{number}")
        if version.number > 1:
            dest.gc(grace_s=0)
        if bundled.number != version.number:  # another writer in a fresh folder: a bug
            raise ConflictError(
                f"The bundled store numbered {version.label} as @{bundled.number}; export "
                "into a new folder."
            )
        return bundled
    finally:
        dest.close()
