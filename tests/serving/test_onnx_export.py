"""ONNX conversion and parity for scikit-learn, XGBoost and LightGBM; int8 quantization;
``export_onnx``, ``export_docker`` and ``loopml export``.

Small models on a few hundred synthetic rows keep each test around a second.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import loopml
from cli_runner import run_cli
from loopml.errors import ConflictError, InvalidParameterError
from loopml.registry.schema import infer_schema
from loopml.serving.export import export_docker, export_onnx
from loopml.serving.onnx import OnnxRunner, convert, parity, quantize_int8, quantized_ops
from loopml.tracking.client import Client

ENV = {"LOOPML_STORE_URI": "", "LOOPML_ARTIFACTS_URI": "", "LOOPML_HEARTBEAT_SECONDS": "0.5"}


def customers(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50.0, 10.0, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    frame["churned"] = np.where((frame.age > 45) ^ (frame.plan == "pro"), "yes", "no")
    return frame


def numbers(n: int = 300) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=n) * 100, "b": rng.normal(size=n), "c": rng.random(n)})
    labels = (X.a / 100 + X.b > 0).to_numpy().astype(np.int64)
    values = (X.a * 3 + X.b + 1000).to_numpy()
    return X, labels, values


def churn_pipeline(frame: pd.DataFrame) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["age", "income"]),
            ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    X = frame[["age", "income", "plan"]]
    return make_pipeline(columns, LogisticRegression()).fit(X, frame["churned"])


def test_a_pipeline_with_a_text_column_exports_with_parity(project: Path) -> None:
    frame = customers()
    model = churn_pipeline(frame)
    X = frame[["age", "income", "plan"]]
    version, _ = loopml.register("churn", model, X=X)
    result = export_onnx("churn@1", project / "churn.onnx")
    assert result.ok and result.parity.ok, str(result.parity)
    assert result.parity.compared == "probabilities" and result.parity.label_agreement == 1.0
    assert result.parity.max_abs_diff < 1e-5
    assert result.path.read_bytes()[:2] and result.size == (project / "churn.onnx").stat().st_size
    assert "made up from the schema" in result.sample  # registered from a notebook: no data
    assert [t.runtime for t in result.latency] == ["native", "onnx"]
    assert all(t.single_row_ms > 0 and t.batch_rows == 1000 for t in result.latency)

    runner = OnnxRunner(result.path.read_bytes())
    assert [i.name for i in runner.session.get_inputs()] == ["age", "income", "plan"]
    labels, probabilities = runner.predict_frame(X.head(5))
    native = model.predict(X.head(5))
    assert labels.dtype == native.dtype and labels.tolist() == native.tolist()
    assert probabilities is not None and probabilities.shape == (5, 2)
    assert runner.classes == ["no", "yes"]
    assert "parity OK on 1,000 rows" in str(result.parity)

    with pytest.raises(ConflictError, match="exists"):
        export_onnx("churn@1", project / "churn.onnx")


def _sklearn_regressor() -> Any:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), Ridge())


def _xgb_classifier() -> Any:
    import xgboost

    return xgboost.XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1)


def _lgbm_regressor() -> Any:
    import lightgbm

    return lightgbm.LGBMRegressor(n_estimators=15, num_leaves=8, verbose=-1, n_jobs=1)


@pytest.mark.parametrize(
    ("make", "target", "compared"),
    [
        (_sklearn_regressor, "values", "values"),
        (_xgb_classifier, "labels", "probabilities"),
        (_lgbm_regressor, "values", "values"),
    ],
    ids=["sklearn-ridge", "XGBClassifier", "LGBMRegressor"],
)
def test_numeric_models_convert_with_parity(make: Any, target: str, compared: str) -> None:
    X, labels, values = numbers()
    y = labels if target == "labels" else values
    model = make().fit(X, y)
    runner = OnnxRunner(convert(model, infer_schema(X, y)))
    [feed] = runner.session.get_inputs()  # all numeric: one [N, F] float tensor
    assert feed.shape[1] == 3 and feed.type == "tensor(float)"
    checked = parity(model, runner, X)
    assert checked.ok and checked.compared == compared and checked.rows == len(X), str(checked)
    predictions, probabilities = runner.predict_frame(X)
    native = model.predict(X)
    if compared == "probabilities":
        assert predictions.dtype == native.dtype and (predictions == native).all()
        assert probabilities is not None and probabilities.shape == (len(X), 2)
    else:
        assert probabilities is None
        # float32 inside ONNX: values near 1,000 agree to ~7 significant digits
        assert np.allclose(predictions, native, rtol=1e-6, atol=1e-3)


def test_a_native_booster_registered_from_a_ubj_file(project: Path) -> None:
    import xgboost

    X, labels, _ = numbers()
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgboost.DMatrix(X, label=labels),
        num_boost_round=15,
    )
    booster.save_model(project / "model.ubj")
    version, _ = loopml.register("boost", path=project / "model.ubj")
    assert version.input_schema is None  # a file alone: the booster's feature names serve
    result = export_onnx("boost@1", project / "boost.onnx")
    assert result.ok and result.parity.compared == "values", str(result.parity)
    runner = OnnxRunner(result.path.read_bytes())
    scores, probabilities = runner.predict_frame(X)
    native = booster.predict(xgboost.DMatrix(X))
    assert scores.shape == native.shape and np.allclose(scores, native, atol=1e-6)
    assert probabilities is not None and np.allclose(probabilities[:, 1], native, atol=1e-6)


def test_a_model_without_a_converter_is_named(project: Path) -> None:
    from sklearn.base import BaseEstimator, RegressorMixin

    class Homemade(RegressorMixin, BaseEstimator):
        def fit(self, X: Any, y: Any) -> Homemade:
            self.n_features_in_ = X.shape[1]
            return self

        def predict(self, X: Any) -> np.ndarray:
            return np.zeros(len(X))

    X, _, values = numbers()
    with pytest.raises(InvalidParameterError, match="Homemade cannot be converted to ONNX") as e:
        convert(Homemade().fit(X, values), infer_schema(X))
    assert "Traceback" not in str(e.value)

    loopml.register("weights", {"w": [1, 2]}, X=X)
    with pytest.raises(InvalidParameterError, match=r"dict cannot be converted.*no converter"):
        export_onnx("weights@1", project / "w.onnx")
    assert not (project / "w.onnx").exists()
    with pytest.raises(InvalidParameterError, match="quantize: got 'int4'"):
        export_onnx("weights@1", project / "w.onnx", quantize="int4")


def test_int8_shrinks_a_network_and_says_when_nothing_quantizes(project: Path) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    X, _, values = numbers()
    with warnings.catch_warnings():  # a tiny network on 300 rows: convergence is not the point
        warnings.simplefilter("ignore", ConvergenceWarning)
        net = MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=50, random_state=0)
        net.fit(X / 100, values / 1000)
    data = convert(net, infer_schema(X))
    small = quantize_int8(data)
    assert len(small) < len(data) / 1.5 and quantized_ops(small) > 0
    assert parity(net, OnnxRunner(small), X / 100, tolerance=0.05).rows == len(X)

    frame = customers()
    suite, _ = loopml.create_suite("churn-holdout", data=frame, target="churned", task="binary")
    X_train, y_train = suite.train()
    model = churn_pipeline(pd.concat([X_train, y_train], axis=1))
    loopml.register("churn", model, X=X_train)
    suite.evaluate("churn@1", resamples=20)
    result = export_onnx("churn@1", project / "churn-int8.onnx", quantize="int8", repeats=20)
    assert result.quantized and result.ok
    assert result.quantize_note is not None and "nothing quantized" in result.quantize_note
    assert "LinearClassifier" in result.quantize_note
    assert result.size <= result.float_size
    assert result.quantized_parity is not None and result.quantized_parity.ok
    assert result.score is not None and result.score.source.startswith("suite churn-holdout@1")
    assert result.score.metric == "roc_auc" and result.score.change == 0.0
    assert json.loads(json.dumps(result.to_dict()))["score"]["metric"] == "roc_auc"


def test_export_docker_writes_a_context_with_a_one_version_store(project: Path) -> None:
    frame = customers()
    X = frame[["age", "income", "plan"]]
    loopml.register("churn", {"placeholder": True})
    version, _ = loopml.register("churn", churn_pipeline(frame), X=X)
    assert version.number == 2
    folder = export_docker("churn@2", project / "image")
    files = sorted(p.name for p in folder.iterdir())
    assert files == [
        ".dockerignore",
        "Dockerfile",
        "README.md",
        "loopml.toml",
        "requirements.txt",
        "store",
    ]
    dockerfile = (folder / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "USER loopml" in dockerfile
    assert "EXPOSE 8000" in dockerfile and "LOOPML_SERVE_TOKEN" in dockerfile
    assert "loopml serve churn@2 --host 0.0.0.0 --port 8000" in dockerfile
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={version.library_version}" in requirements
    assert any(line.startswith("loopml[serve,onnx]") for line in requirements)

    bundled = Client(
        store_uri=str(folder / "store" / "store.db"),
        artifacts_uri=str(folder / "store" / "blobs"),
    )
    try:
        loaded = loopml.load("churn@2", client=bundled)
        assert loaded.version.digest == version.digest and loaded.version.number == 2
        assert loaded.version.input_schema == version.input_schema
        assert [v.number for v in bundled.model_versions("churn")] == [2]
        assert (
            loaded.predict(X.head(3)).tolist() == loopml.load("churn@2").predict(X.head(3)).tolist()
        )
    finally:
        bundled.close()

    with pytest.raises(ConflictError, match="not empty"):
        export_docker("churn@2", folder)
    assert export_docker("churn@2", folder, force=True) == folder


def test_cli_export_onnx_docker_and_errors(project: Path) -> None:
    frame = customers()
    loopml.register("churn", churn_pipeline(frame), X=frame[["age", "income", "plan"]])

    done = run_cli(
        "export", "churn@1", "--format", "onnx", "-o", "churn.onnx", cwd=project, env=ENV
    )
    assert done.returncode == 0, done.stderr
    assert "parity OK" in done.stdout and "runtime" in done.stdout and "1,000 rows" in done.stdout
    assert (project / "churn.onnx").is_file()

    image = run_cli(
        "export", "churn@1", "--format", "docker", "-o", "image", "--json", cwd=project, env=ENV
    )
    assert image.returncode == 0, image.stderr
    assert "Dockerfile" in json.loads(image.stdout)["files"]

    bad = run_cli("export", "churn@1", "--format", "zip", "-o", "x", cwd=project, env=ENV)
    assert bad.returncode == 2 and "'zip' is not one of 'onnx', 'docker'" in bad.stderr
    missing = run_cli("export", "nope@1", "--format", "onnx", "-o", "x.onnx", cwd=project, env=ENV)
    assert missing.returncode == 1 and "Error: No model named 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr and not (project / "x.onnx").exists()


def test_served_numeric_model_answers_from_one_matrix_like_the_native_model() -> None:
    """An all-float schema takes the fast path to ONNX Runtime's one numeric input (the
    columns stacked once); its answers equal the native model's, row for row."""
    from loopml.serving.served import load_served
    from serve_server import register_regressor

    version, model = register_regressor("price")
    served = load_served("price")
    assert served.runtime == "onnx", served.onnx_error
    from sklearn.datasets import load_diabetes

    X = load_diabetes(as_frame=True).data.head(50)
    batch = served.check_columns({c: X[c].tolist() for c in X}, len(X))
    assert batch.matrix is not None  # the stacked fast path, not the dict of columns
    answers = served.predict(batch).predictions
    expected = model.predict(X)
    assert answers.shape == expected.shape
    assert abs(answers - expected).max() <= 1e-4 * max(1.0, abs(expected).max())
