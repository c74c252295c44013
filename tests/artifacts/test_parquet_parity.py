"""A frame loaded from the store computes exactly what the in-memory frame computes.

A process or Ray executor hands a step its input loaded back from Parquet; the local executor
hands over the frame itself. Equal values are not enough: ``to_numpy()`` of a frame whose
columns share one row-major block (``load_diabetes(as_frame=True)``) is row-major, pyarrow's
frames are column-major, and BLAS-backed fits (Ridge, LinearRegression, PCA) then differ in
their last bits. The round trip keeps the block layout, so the fitted models pickle to the
same bytes (the same digest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.artifacts import ArtifactStore
from loopml.artifacts.materializers.pandas import block_layout

pytest.importorskip("sklearn")
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LinearRegression, Ridge  # noqa: E402

TARGET = "progression"  # as in the `loopml init` template (cli/templates/pipelines.py)


def _template_frame() -> pd.DataFrame:
    """The template's ``load`` step: one row-major block of features, then the target."""
    return load_diabetes(as_frame=True).frame.rename(columns={"target": TARGET})


def _round_trip(store: ArtifactStore, frame: pd.DataFrame) -> pd.DataFrame:
    stored = store.put_value(frame)
    back: pd.DataFrame = store.get_value(stored.digest, stored.materializer, stored.metadata)
    return back


def _train_part(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """What the template's ``train`` step fits on: ``Suite.train()`` takes the training rows
    (``iloc``) and then the feature columns."""
    rows = np.random.default_rng(0).permutation(len(frame))[: len(frame) * 3 // 4]
    part = frame.iloc[rows]
    return part[[c for c in frame.columns if c != TARGET]], part[TARGET]


def _model_digest(store: ArtifactStore, make: Callable[[], Any], frame: pd.DataFrame) -> str:
    X, y = _train_part(frame)
    stored = store.put_value(make().fit(X, y))  # the sklearn.pickle materializer's bytes
    assert stored.materializer == "sklearn.pickle"
    return stored.digest


def _contiguity(frame: pd.DataFrame) -> tuple[bool, bool]:
    flags = frame.to_numpy().flags
    return flags.c_contiguous, flags.f_contiguous


def _layout(frame: pd.DataFrame) -> set[tuple[str, tuple[int, ...]]]:
    """The blocks as (order, column positions), without their order in the manager."""
    layout = block_layout(frame) or []
    return {(o, tuple(s + i for s, n in runs for i in range(n))) for o, runs in layout}


def test_the_templates_ridge_pickles_the_same_from_memory_or_from_the_store(
    store: ArtifactStore,
) -> None:
    frame = _template_frame()
    back = _round_trip(store, frame)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert _layout(back) == _layout(frame)
    assert _contiguity(back) == _contiguity(frame)
    assert _contiguity(_train_part(back)[0]) == _contiguity(_train_part(frame)[0]) == (True, False)
    ridge = lambda: Ridge(alpha=1.0)  # noqa: E731 - the template's default alpha
    assert _model_digest(store, ridge, back) == _model_digest(store, ridge, frame)


@pytest.mark.parametrize(
    "make", [LinearRegression, lambda: PCA(n_components=5, random_state=0)], ids=["linear", "pca"]
)
def test_other_models_pickle_the_same_from_memory_or_from_the_store(
    store: ArtifactStore, make: Callable[[], Any]
) -> None:
    frame = _template_frame()
    back = _round_trip(store, frame)
    assert _model_digest(store, make, back) == _model_digest(store, make, frame)


# -- any frame ----------------------------------------------------------------------------

NUMERIC = ("float64", "float32", "int64", "int32", "bool")
MIXED = (*NUMERIC, "str", "category", "datetime")


def _column(draw: st.DrawFn, kind: str, rows: int) -> pd.Series:
    if kind == "str":
        values = draw(st.lists(st.text(max_size=4), min_size=rows, max_size=rows))
        return pd.Series(values, dtype="str")
    if kind == "category":
        values = draw(st.lists(st.sampled_from("xyz"), min_size=rows, max_size=rows))
        return pd.Series(pd.Categorical(values, categories=list("xyz")))
    if kind == "datetime":
        seconds = draw(st.lists(st.integers(0, 2**33), min_size=rows, max_size=rows))
        unit = draw(st.sampled_from(["ms", "us", "ns"]))  # Parquet has no seconds: "s" loads as ms
        return pd.Series(pd.to_datetime(seconds, unit="s").as_unit(unit))
    if kind == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=bool)
    if kind.startswith("float"):
        floats = st.floats(
            allow_nan=True, allow_infinity=True, width=32 if kind == "float32" else 64
        )
        return pd.Series(draw(st.lists(floats, min_size=rows, max_size=rows)), dtype=kind)
    bits = 31 if kind == "int32" else 63
    values = st.integers(-(2**bits), 2**bits - 1)
    return pd.Series(draw(st.lists(values, min_size=rows, max_size=rows)), dtype=kind)


@st.composite
def frames(draw: st.DrawFn, kinds: tuple[str, ...]) -> pd.DataFrame:
    """Frames of many dtypes, built the ways frames get their layouts: from a dict (one
    column-major block per dtype), from a 2-D array without a copy (one row-major block),
    by adding columns (a block each), by reordering columns, by taking rows."""
    rows = draw(st.integers(0, 6))
    count = draw(st.integers(1, 6))
    names = [f"c{i}" for i in range(count)]
    how = draw(st.sampled_from(["dict", "array", "added", "reordered", "rows"]))
    if rows == 0:  # pyarrow loses an empty categorical's categories, whatever the layout
        kinds = tuple(k for k in kinds if k != "category")
    if how == "array":
        dtype = draw(st.sampled_from(["float64", "int64"]))
        values = np.arange(rows * count, dtype=dtype).reshape(rows, count)
        frame = pd.DataFrame(values, columns=names, copy=False)
    else:
        columns = {n: _column(draw, draw(st.sampled_from(kinds)), rows) for n in names}
        frame = pd.DataFrame(columns)
        if how == "added":
            extra = _column(draw, draw(st.sampled_from(kinds)), rows)
            frame[f"c{count}"] = extra.to_numpy() if extra.dtype.kind in "fiub" else extra
        elif how == "reordered":  # reversed: a view with negative strides; else a copy
            reverse = draw(st.booleans())
            frame = frame[names[::-1] if reverse else draw(st.permutations(names))]
        elif how == "rows" and rows:  # reversed: a view with negative strides; else a copy
            reverse = draw(st.booleans())
            frame = frame.iloc[::-1] if reverse else frame.iloc[draw(st.permutations(range(rows)))]
    index = draw(st.sampled_from(["range", "stepped", "custom"]))
    if index == "stepped":
        frame.index = pd.RangeIndex(5, 5 + 3 * len(frame), 3)
    elif index == "custom":
        frame.index = pd.Index([f"r{i}" for i in range(len(frame))], name="row")
    if draw(st.booleans()):
        frame.attrs["source"] = "test"
    return frame


SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(frame=frames(MIXED))
def test_any_frame_round_trips_exactly(store: ArtifactStore, frame: pd.DataFrame) -> None:
    back = _round_trip(store, frame)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back.attrs == frame.attrs
    assert _layout(back) == _layout(frame)


@SETTINGS
@given(frame=frames(NUMERIC))
def test_a_numeric_frame_keeps_its_blocks_and_contiguity(
    store: ArtifactStore, frame: pd.DataFrame
) -> None:
    back = _round_trip(store, frame)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert _layout(back) == _layout(frame)
    assert _contiguity(back) == _contiguity(frame)
    if len(frame._mgr.blocks) == 1 and len(frame) > 1 and frame.shape[1] > 1:
        assert back.to_numpy().strides == frame.to_numpy().strides
