"""XGBoost and LightGBM models round-trip through the store in their native formats, not
pickle; every model materializer records its library version and warns when it changed."""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder

from loopml.artifacts import materializer_named
from loopml.errors import LibraryVersionWarning, MaterializerError
from loopml.tracking.client import Client

ROUNDS = 20


def _cancer() -> tuple[pd.DataFrame, pd.Series]:
    return load_breast_cancer(return_X_y=True, as_frame=True)  # type: ignore[no-any-return]


def _diabetes() -> tuple[pd.DataFrame, pd.Series]:
    return load_diabetes(return_X_y=True, as_frame=True)  # type: ignore[no-any-return]


def _xgb_classifier() -> tuple[Any, pd.DataFrame]:
    X, y = _cancer()
    return xgboost.XGBClassifier(n_estimators=ROUNDS, max_depth=3).fit(X, y), X


def _xgb_regressor() -> tuple[Any, pd.DataFrame]:
    X, y = _diabetes()
    return xgboost.XGBRegressor(n_estimators=ROUNDS, learning_rate=0.2).fit(X, y), X


def _xgb_booster() -> tuple[Any, pd.DataFrame]:
    X, y = _cancer()
    params = {"objective": "binary:logistic", "max_depth": 3}
    return xgboost.train(params, xgboost.DMatrix(X, label=y), num_boost_round=ROUNDS), X


def _lgbm_classifier() -> tuple[Any, pd.DataFrame]:
    X, y = _cancer()
    return lightgbm.LGBMClassifier(n_estimators=ROUNDS, num_leaves=7, verbose=-1).fit(X, y), X


def _lgbm_regressor() -> tuple[Any, pd.DataFrame]:
    X, y = _diabetes()
    return lightgbm.LGBMRegressor(n_estimators=ROUNDS, verbose=-1).fit(X.to_numpy(), y), X


def _lgbm_booster() -> tuple[Any, pd.DataFrame]:
    X, y = _cancer()
    params = {"objective": "binary", "verbose": -1}
    return lightgbm.train(params, lightgbm.Dataset(X, label=y), ROUNDS), X


MODELS: dict[str, tuple[Callable[[], tuple[Any, pd.DataFrame]], str, bytes]] = {
    "XGBClassifier": (_xgb_classifier, "xgboost.ubj", b"{"),
    "XGBRegressor": (_xgb_regressor, "xgboost.ubj", b"{"),
    "xgboost.Booster": (_xgb_booster, "xgboost.ubj", b"{"),
    "LGBMClassifier": (_lgbm_classifier, "lightgbm.json", b"{"),
    "LGBMRegressor": (_lgbm_regressor, "lightgbm.json", b"{"),
    "lightgbm.Booster": (_lgbm_booster, "lightgbm.txt", b"tree\nversion="),
}


def _predictions(model: Any, X: pd.DataFrame) -> dict[str, np.ndarray]:
    if isinstance(model, xgboost.Booster):
        return {"predict": model.predict(xgboost.DMatrix(X))}
    if isinstance(model, lightgbm.Booster):
        return {"predict": model.predict(X)}
    if isinstance(model, lightgbm.LGBMRegressor):
        X = X.to_numpy()  # fitted on an array: no feature names
    out = {"predict": model.predict(X)}
    if hasattr(model, "predict_proba"):
        out["predict_proba"] = model.predict_proba(X)
    return out


def _assert_bit_identical(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert got.keys() == expected.keys()
    for name, values in expected.items():
        assert got[name].dtype == values.dtype, name
        # Object arrays hold pointers: compare those by value, everything else by its bytes.
        same = got[name].tolist() if values.dtype == object else got[name].tobytes()
        wanted = values.tolist() if values.dtype == object else values.tobytes()
        assert same == wanted, f"{name} differs after the round trip"


def _blob(client: Client, digest: str, tmp_path: Path) -> bytes:
    return client.export_artifact(digest, tmp_path / "blob").read_bytes()


@pytest.mark.parametrize("kind", list(MODELS))
def test_model_round_trips_natively_with_identical_predictions(kind: str, tmp_path: Path) -> None:
    make, materializer, magic = MODELS[kind]
    model, X = make()
    expected = _predictions(model, X)
    client = Client()

    record = client.store_value(model)
    back = client.load_artifact(record.digest)

    assert record.materializer == materializer
    assert record.metadata["class"] == f"{type(model).__module__}.{type(model).__qualname__}"
    library = type(model).__module__.partition(".")[0]
    assert record.metadata[f"{library}_version"] == __import__(library).__version__
    assert type(back) is type(model)
    _assert_bit_identical(_predictions(back, X), expected)
    if not isinstance(model, xgboost.Booster | lightgbm.Booster):
        assert repr(back.get_params()) == repr(model.get_params())
        assert back.n_features_in_ == model.n_features_in_
    if hasattr(model, "classes_"):
        np.testing.assert_array_equal(back.classes_, model.classes_)
        assert back.classes_.dtype == model.classes_.dtype
    if hasattr(model, "feature_names_in_"):
        np.testing.assert_array_equal(back.feature_names_in_, model.feature_names_in_)

    blob = _blob(client, record.digest, tmp_path)
    assert blob.startswith(magic) and not blob.startswith(b"\x80")
    with pytest.raises(Exception):  # noqa: B017 - any failure: it is simply not a pickle
        pickle.loads(blob)  # noqa: S301 - our own bytes, proving they are not a pickle

    assert client.store_value(model).digest == record.digest, "same model, same bytes"
    assert client.store_value(back).digest == record.digest, "a loaded model saves the same"


def test_lightgbm_wrapper_file_holds_lightgbm_model_text(tmp_path: Path) -> None:
    model, X = _lgbm_classifier()
    client = Client()
    doc = json.loads(_blob(client, client.store_value(model).digest, tmp_path))
    booster = lightgbm.Booster(model_str=doc["booster"])  # readable without loopml
    np.testing.assert_array_equal(booster.predict(X), model.predict_proba(X)[:, 1])


def test_lightgbm_string_labels_survive_with_their_dtype() -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    names = np.array(["setosa", "versicolor", "virginica"])
    for labels in (names[y], pd.Series(names[y], dtype=object)):
        model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, labels)
        back = Client().load_artifact(Client().store_value(model).digest)
        assert back.classes_.dtype == model.classes_.dtype
        assert back.predict(X).tolist() == model.predict(X).tolist()
        assert set(back.predict(X)) <= set(names)
        _assert_bit_identical(_predictions(back, X), _predictions(model, X))


def test_xgboost_string_labels_through_a_label_encoder() -> None:
    """XGBClassifier needs 0..n-1 labels: users encode them, and store the encoder too."""
    X, y = _cancer()
    labels = np.where(y == 1, "benign", "malignant")
    encoder = LabelEncoder().fit(labels)
    model = xgboost.XGBClassifier(n_estimators=10).fit(X, encoder.transform(labels))
    client = Client()
    stored = {name: client.store_value(v) for name, v in {"m": model, "e": encoder}.items()}
    assert stored["m"].materializer == "xgboost.ubj"
    assert stored["e"].materializer == "sklearn.pickle"
    back, back_encoder = (client.load_artifact(stored[n].digest) for n in ("m", "e"))
    decoded = back_encoder.inverse_transform(back.predict(X))
    assert decoded.tolist() == encoder.inverse_transform(model.predict(X)).tolist()
    assert set(decoded) == {"benign", "malignant"}


def test_lightgbm_booster_keeps_its_best_iteration() -> None:
    X, y = _cancer()
    train = lightgbm.Dataset(X[:400], label=y[:400])
    valid = lightgbm.Dataset(X[400:], label=y[400:], reference=train)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "learning_rate": 0.5},
        train,
        200,
        valid_sets=[valid],
        callbacks=[lightgbm.early_stopping(3, verbose=False)],
        keep_training_booster=True,
    )
    assert 0 < booster.best_iteration < booster.current_iteration()
    record = Client().store_value(booster)
    back = Client().load_artifact(record.digest)
    assert back.best_iteration == booster.best_iteration
    assert back.predict(X).tobytes() == booster.predict(X).tobytes()


class MyXGBClassifier(xgboost.XGBClassifier):
    """A user's subclass: it may hold state XGBoost's file does not know about."""


def _custom_objective(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return y_pred - y_true, np.ones_like(y_pred)


@pytest.mark.parametrize(
    "make",
    [
        lambda X, y: xgboost.XGBClassifier(),
        lambda X, y: lightgbm.LGBMClassifier(),
        lambda X, y: MyXGBClassifier(n_estimators=5).fit(X, y),
        lambda X, y: lightgbm.LGBMRegressor(
            objective=_custom_objective, n_estimators=5, verbose=-1
        ).fit(X, y),
        lambda X, y: LogisticRegression(max_iter=5000).fit(X, y),
    ],
    ids=["unfitted-xgb", "unfitted-lgbm", "xgb-subclass", "lgbm-callable-objective", "sklearn"],
)
def test_what_has_no_native_form_stays_with_pickle(make: Any) -> None:
    X, y = _cancer()
    model = make(X, y)
    record = Client().store_value(model)
    assert record.materializer == "sklearn.pickle"
    assert type(Client().load_artifact(record.digest)) is type(model)


def test_a_file_naming_a_foreign_class_is_refused(tmp_path: Path) -> None:
    model, _ = _lgbm_regressor()
    client = Client()
    doc = json.loads(_blob(client, client.store_value(model).digest, tmp_path))
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**doc, "class": "subprocess.Popen"}))
    with pytest.raises(MaterializerError, match="'subprocess.Popen'"):
        materializer_named("lightgbm.json").load(forged, {})


@pytest.mark.parametrize(
    ("make", "library"),
    [
        (lambda: LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "sklearn"),
        (lambda: _xgb_booster()[0], "xgboost"),
        (lambda: _lgbm_booster()[0], "lightgbm"),
        (lambda: _lgbm_classifier()[0], "lightgbm"),
    ],
    ids=["sklearn", "xgboost", "lightgbm-booster", "lightgbm-wrapper"],
)
def test_loading_under_another_library_version_warns_once(make: Any, library: str) -> None:
    client = Client()
    record = client.store_value(make())
    installed = __import__(library).__version__
    claimed = {**record.metadata, f"{library}_version": "0.0.1"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client.artifacts.get_value(record.digest, record.materializer, claimed)
    assert [w.category for w in caught] == [LibraryVersionWarning]
    message = str(caught[0].message)
    assert f"{library} 0.0.1" in message and f"{library} {installed}" in message
    assert "predict differently" in message
    assert issubclass(LibraryVersionWarning, UserWarning)
