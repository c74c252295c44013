"""Each built-in materializer round-trips; digests are deterministic; the registry rules."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
from collections import OrderedDict, namedtuple
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal as pl_assert_frame_equal
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from loopml.artifacts import (
    ArtifactStore,
    Materializer,
    materializer_for,
    materializer_named,
    register_materializer,
)
from loopml.errors import MaterializerError, NotFoundError

SRC = Path(__file__).resolve().parents[2] / "src"


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": pd.array([1, None, 3], dtype="Int64"),
            "f": [1.5, math.nan, -0.0],
            "s": ["a", None, "ü"],
            "cat": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True),
            "ts": pd.to_datetime(
                ["2024-03-31 01:30", "2024-10-27 02:30", "2025-01-01 00:00"]
            ).tz_localize("UTC"),
            "naive": pd.date_range("2024-01-01", periods=3, freq="D"),
            "td": pd.to_timedelta([1, 2, 3], unit="s"),
            "b": [True, False, True],
        },
        index=pd.Index([30, 10, 20], name="customer_id"),
    )


def _round_trip(store: ArtifactStore, value: Any) -> tuple[Any, Any]:
    stored = store.put_value(value)
    return stored, store.get_value(stored.digest, stored.materializer, stored.metadata)


def test_pandas_dataframe_round_trip(store: ArtifactStore) -> None:
    frame = _frame()
    frame.attrs["source"] = "crm"
    stored, back = _round_trip(store, frame)
    assert stored.materializer == "pandas.parquet"
    assert stored.type_name == f"{type(frame).__module__}.DataFrame"
    assert stored.metadata["rows"] == 3 and stored.metadata["columns"] == 8
    assert stored.metadata["schema"]["cat"] == "category"
    assert stored.metadata["schema"]["ts"].startswith("datetime64")
    pd.testing.assert_frame_equal(back, frame)
    assert back.attrs == {"source": "crm"}


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": [1, 2]}, index=pd.RangeIndex(5, 9, 2)),
        pd.DataFrame({"a": [1, 2]}).iloc[::-1],
        pd.DataFrame(
            {"a": [1, 2]}, index=pd.MultiIndex.from_tuples([(1, "x"), (2, "y")], names=["k", "v"])
        ),
        pd.DataFrame({1: [1.0], 2: [2.0]}),
        pd.DataFrame({("a", "b"): [1], ("a", "c"): [2]}),
        pd.DataFrame({"a": pd.Series([], dtype="float32")}),
        pd.DataFrame(
            {"when": pd.date_range("2024-01-01", periods=2, tz="Europe/Berlin")},
            index=pd.Index(["x", "y"]),
        ),
    ],
)
def test_pandas_index_and_columns_round_trip(store: ArtifactStore, frame: pd.DataFrame) -> None:
    _, back = _round_trip(store, frame)
    pd.testing.assert_frame_equal(back, frame)


@pytest.mark.parametrize("name", ["price", None, 3])
def test_pandas_series_round_trip(store: ArtifactStore, name: Any) -> None:
    series = pd.Series([1.0, 2.0, None], index=["a", "b", "c"], name=name)
    stored, back = _round_trip(store, series)
    assert stored.metadata["kind"] == "series"
    pd.testing.assert_series_equal(back, series)
    # Self-describing: loads as a Series even without the metadata row.
    pd.testing.assert_series_equal(store.get_value(stored.digest, stored.materializer), series)


def test_pandas_digest_is_deterministic(store: ArtifactStore, tmp_path: Path) -> None:
    first = store.put_value(_frame()).digest
    assert store.put_value(_frame()).digest == first
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]); from test_materializers import _frame; "
        "from loopml.artifacts import ArtifactStore; print(ArtifactStore(sys.argv[1]).put_value(_frame()).digest)"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONHASHSEED": "123"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "other"), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert proc.stdout.strip() == first, "a fresh process stores the same bytes"


def test_pandas_unstorable_frames_explain_the_fix(store: ArtifactStore) -> None:
    with pytest.raises(MaterializerError, match="duplicate column names \\['a'\\].*Rename"):
        store.put_value(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(MaterializerError, match="mix types.*astype\\(str\\)"):
        store.put_value(pd.DataFrame({"a": [1], 0: [2]}))
    with pytest.raises(MaterializerError, match="Cannot convert this dataframe to Arrow"):
        store.put_value(pd.DataFrame({"a": [1, "x"]}))
    with pytest.raises(MaterializerError, match="Series named \\('a', 'b'\\)"):
        store.put_value(pd.Series([1], name=("a", "b")))
    assert list(store.iter_temp()) == []


def test_polars_round_trip(store: ArtifactStore) -> None:
    frame = pl.DataFrame(
        {
            "a": [1, None, 3],
            "s": ["x", "y", None],
            "c": pl.Series(["u", "v", "u"], dtype=pl.Categorical),
        }
    )
    stored, back = _round_trip(store, frame)
    assert stored.materializer == "polars.parquet"
    assert stored.metadata["rows"] == 3 and set(stored.metadata["schema"]) == {"a", "s", "c"}
    pl_assert_frame_equal(back, frame)
    assert store.put_value(frame.clone()).digest == stored.digest
    series = pl.Series("n", [1.5, 2.5])
    stored_series, back_series = _round_trip(store, series)
    assert stored_series.metadata["kind"] == "series"
    assert back_series.equals(series) and back_series.name == "n"


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.int32).reshape(3, 4),
        np.array([[1.5, np.nan], [np.inf, -0.0]]),
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        np.array(["a", "bé"]),
        np.zeros((0, 3), dtype=np.uint8),
        np.array([(1, 2.0)], dtype=[("x", "i4"), ("y", "f8")]),
        np.array(3.0),
    ],
)
def test_numpy_round_trip(store: ArtifactStore, array: np.ndarray) -> None:
    stored, back = _round_trip(store, array)
    assert stored.materializer == "numpy.npy"
    assert stored.metadata["shape"] == list(array.shape) and stored.metadata["dtype"] == str(
        array.dtype
    )
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert store.put_value(array.copy()).digest == stored.digest


def test_numpy_scalars_and_refusals(store: ArtifactStore) -> None:
    stored, back = _round_trip(store, np.float32(2.5))
    assert back == np.float32(2.5) and type(back) is np.float32
    with pytest.raises(MaterializerError, match="dtype=object need pickle"):
        store.put_value(np.array([{"a": 1}], dtype=object))
    with pytest.raises(MaterializerError, match="MaskedArray is an ndarray subclass"):
        store.put_value(np.ma.masked_array([1, 2], mask=[False, True]))


def test_sklearn_fitted_model_predicts_the_same(store: ArtifactStore) -> None:
    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    model = make_pipeline(
        StandardScaler(), RandomForestClassifier(n_estimators=10, random_state=0)
    ).fit(X, y)
    stored, back = _round_trip(store, model)
    assert stored.materializer == "sklearn.pickle"
    assert stored.metadata["class"] == "sklearn.pipeline.Pipeline"
    assert stored.metadata["sklearn_version"]
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
    _, plain = _round_trip(store, LogisticRegression(C=0.5))
    assert plain.get_params()["C"] == 0.5


def _lambda_pipeline() -> Any:
    return make_pipeline(FunctionTransformer(lambda x: x))


def test_sklearn_unpicklable_model(store: ArtifactStore) -> None:
    with pytest.raises(MaterializerError, match="Cannot pickle the Pipeline estimator"):
        store.put_value(_lambda_pipeline())


def test_sklearn_refuses_to_unpickle_outside_the_store(tmp_path: Path) -> None:
    canary = tmp_path / "canary.pkl"
    canary.write_bytes(pickle.dumps(LogisticRegression()))
    with pytest.raises(MaterializerError, match="Refusing to unpickle .*canary.pkl"):
        materializer_named("sklearn.pickle").load(canary, {})


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({"b": 1, "a": [1.5, None, True, "é"]}, "dict"),
        ([1, [2, [3, {}]]], "list"),
        ((1, "two", [3]), "tuple"),
        (42, "int"),
        (2**80, "int"),
        (0.1, "float"),
        (False, "bool"),
        (None, "null"),
        ({"nan": math.inf}, "dict"),
    ],
)
def test_json_round_trip(store: ArtifactStore, value: Any, kind: str) -> None:
    stored, back = _round_trip(store, value)
    assert stored.materializer == "json" and stored.metadata == {"kind": kind}
    assert back == value and type(back) is type(value)


def test_json_is_canonical(store: ArtifactStore) -> None:
    stored = store.put_value({"z": 1, "a": {"y": [1, 2], "b": "é"}})
    assert store.get_bytes(stored.digest) == '{"a":{"b":"é","y":[1,2]},"z":1}'.encode()
    assert store.put_value({"a": {"b": "é", "y": [1, 2]}, "z": 1}).digest == stored.digest


def test_bytes_and_text_round_trip(store: ArtifactStore) -> None:
    stored, back = _round_trip(store, b"\x00\xffraw")
    assert (stored.materializer, back) == ("bytes", b"\x00\xffraw")
    stored, back = _round_trip(store, bytearray(b"ba"))
    assert (stored.materializer, back) == ("bytes", b"ba")
    stored, back = _round_trip(store, "héllo\r\nwörld")
    assert (stored.materializer, back, stored.metadata) == ("text", "héllo\r\nwörld", {"chars": 12})
    assert store.get_bytes(stored.digest) == "héllo\r\nwörld".encode()
    with pytest.raises(MaterializerError, match="lone surrogates"):
        store.put_value("bad \ud800")


class Thing:
    pass


Point = namedtuple("Point", "x y")


class Level(IntEnum):
    LOW = 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (Thing(), ""),
        ({1: "a"}, "has the key 1 of type int"),
        ({"a": {1, 2}}, "value['a'] is a builtins.set"),
        ([Thing()], "value[0] is a test_materializers.Thing"),
        (Point(1, 2), "value is a test_materializers.Point"),
        (Level.LOW, "value is a test_materializers.Level"),
        (OrderedDict(a=1), "value is a collections.OrderedDict"),
    ],
)
def test_unsupported_values_explain_the_fix(store: ArtifactStore, value: Any, reason: str) -> None:
    with pytest.raises(MaterializerError) as info:
        store.put_value(value, source="step 'train'")
    message = str(info.value)
    spelled = f"{type(value).__module__}.{type(value).__qualname__}"
    assert message.startswith(
        f"No materializer for values of type {spelled!r} (returned by step 'train')."
    )
    assert "pandas.DataFrame" in message and "numpy.ndarray" in message
    assert f"`loopml.register_materializer({spelled!r}, MyMaterializer())`" in message
    assert reason in message
    assert list(store.iter_temp()) == []


def test_deeply_nested_value_is_refused_not_crashing() -> None:
    deep: list[Any] = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(MaterializerError, match="nested more than 500 levels"):
        materializer_for(deep)


class UpperText:
    name, extension = "test.upper", ".txt"

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        path.write_bytes(str(value).upper().encode())
        return {"upper": True}

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        return path.read_text()


class CsvFrame:
    name, extension = "test.csv", ".csv"

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        value.to_csv(path)
        return {}

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        return pd.read_csv(path, index_col=0)


def test_user_registration_by_type_wins_over_builtin(store: ArtifactStore) -> None:
    assert isinstance(UpperText(), Materializer)
    register_materializer(str, UpperText())
    stored, back = _round_trip(store, "shout")
    assert (stored.materializer, back, stored.metadata) == ("test.upper", "SHOUT", {"upper": True})
    assert materializer_named("test.upper").name == "test.upper"


def test_user_registration_by_name_wins_over_builtin(store: ArtifactStore) -> None:
    register_materializer("pandas.DataFrame", CsvFrame())
    stored = store.put_value(pd.DataFrame({"a": [1, 2]}))
    assert stored.materializer == "test.csv"
    assert store.get_bytes(stored.digest).startswith(b",a\n")
    assert materializer_for(pd.Series([1])).name == "pandas.parquet", "Series is not a DataFrame"


def test_registration_by_the_defining_module_path(store: ArtifactStore) -> None:
    assert type(pd.DataFrame()).__module__ == "pandas"  # pandas rewrites __module__
    register_materializer("pandas.core.frame.DataFrame", CsvFrame())
    assert materializer_for(pd.DataFrame({"a": [1]})).name == "test.csv"
    register_materializer("no_such_module.Thing", UpperText())
    with pytest.raises(MaterializerError, match="your registrations: no_such_module.Thing"):
        materializer_for(Thing())


def test_registration_for_a_subclass_and_by_module_name(store: ArtifactStore) -> None:
    class Special(Thing):
        pass

    register_materializer(f"{__name__}.Thing", UpperText())
    assert materializer_for(Special()).name == "test.upper", "subclasses match through the MRO"
    assert materializer_for("plain").name == "text"


@pytest.mark.parametrize(
    ("type_", "materializer", "match"),
    [
        (Thing, object(), "expected a Materializer.*lacks a valid save, load, name"),
        (Thing, UpperText, "got the class UpperText. Pass UpperText\\(\\) instead"),
        ("Thing", UpperText(), "a 'module.QualName' string as type_; got 'Thing'"),
        (42, UpperText(), "got 42"),
    ],
)
def test_bad_registrations(type_: Any, materializer: Any, match: str) -> None:
    with pytest.raises(MaterializerError, match=match):
        register_materializer(type_, materializer)


def test_materializer_names_are_unique() -> None:
    class FakeJson(UpperText):
        name = "json"

    with pytest.raises(MaterializerError, match="belongs to a built-in"):
        register_materializer(Thing, FakeJson())

    class Another(CsvFrame):
        name = "test.upper"

    register_materializer(Thing, UpperText())
    register_materializer(Thing, UpperText())  # re-registering (a notebook re-run) is fine
    with pytest.raises(MaterializerError, match="already registered by"):
        register_materializer(Thing, Another())


def test_materializer_named_suggests() -> None:
    assert materializer_named("numpy.npy").extension == ".npy"
    with pytest.raises(
        NotFoundError, match="Unknown materializer 'pandas.parqet'.*Did you mean 'pandas.parquet'"
    ):
        materializer_named("pandas.parqet")


def test_metadata_must_be_json(store: ArtifactStore) -> None:
    class BadMeta(UpperText):
        name = "test.badmeta"

        def save(self, value: Any, path: Path) -> dict[str, Any]:
            path.write_bytes(b"x")
            return {"n": np.int64(3)}

    register_materializer(Thing, BadMeta())
    with pytest.raises(MaterializerError, match="metadata that is not JSON-able"):
        store.put_value(Thing())
