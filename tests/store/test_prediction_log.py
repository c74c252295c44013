"""The prediction log in the store and read back as a frame: written once per id, feedback
upserted and joined (shadow rows join the answered prediction's label), filters, and clear
errors for bad arguments. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

import loopml
from loopml.errors import InvalidParameterError
from loopml.store.predictions import PredictionRow


def _row(pid: str, at: float, *, version: int = 1, variant: str = "churn@production", **kw: Any):
    inputs = json.dumps({"age": int(at), "plan": "pro"})
    output = json.dumps({"prediction": 1, "probabilities": [0.25, 0.75]})
    return PredictionRow(pid, "churn", version, variant, at, inputs, output, **kw)


@pytest.fixture
def logged(client: Any) -> Any:
    from serve_server import register_classifier

    register_classifier("churn", client=client)
    store = client.open().metadata.predictions
    store.add([_row("a-1", 100.0), _row("a-2", 200.0), _row("a-3", 300.0, version=2)])
    store.add([_row("a-3.s", 300.0, variant="shadow:churn@staging", shadow_of="a-3")])
    return client


def test_a_row_is_written_once_and_a_newer_label_replaces_an_older(logged: Any) -> None:
    store = logged.open().metadata.predictions
    store.add([_row("a-1", 999.0), _row("a-4", 400.0)])  # a-1 again: kept as first written
    store.add_feedback([("a-1", json.dumps(0), 500.0)])
    store.add_feedback([("a-1", json.dumps(1), 600.0), ("zz-9", json.dumps(1), 600.0)])
    rows = {r.id: r for r in store.query("churn")}
    assert rows["a-1"].at == 100.0 and rows["a-1"].label == "1" and rows["a-1"].feedback_at == 600.0
    assert "a-4" in rows and rows["a-4"].label is None
    assert store.count("churn") == 5


def test_the_frame_has_inputs_outputs_probabilities_and_joined_labels(logged: Any) -> None:
    logged.open().metadata.predictions.add_feedback([("a-3", json.dumps(0), 350.0)])
    frame = loopml.predictions("churn", client=logged)
    assert list(frame["prediction_id"]) == ["a-1", "a-2", "a-3", "a-3.s"]
    assert {"age", "plan", "prediction", "proba_0", "proba_1", "label", "variant"} <= set(frame)
    assert frame["at"].dt.tz is not None
    assert frame.set_index("prediction_id").loc["a-3", "label"] == 0
    shadow = frame.set_index("prediction_id").loc["a-3.s"]
    assert shadow["variant"] == "shadow:churn@staging" and shadow["label"] == 0
    assert frame["proba_1"].tolist() == [0.75] * 4


def test_filters_by_time_version_and_variant(logged: Any) -> None:
    since = loopml.predictions("churn", since=150.0, until=300.0, client=logged)
    assert list(since["prediction_id"]) == ["a-2"]
    iso = loopml.predictions("churn", since="1970-01-01T00:04:00+00:00", client=logged)
    assert list(iso["prediction_id"]) == ["a-3", "a-3.s"]
    assert list(loopml.predictions("churn", version=2, client=logged)["prediction_id"]) == ["a-3"]
    only = loopml.predictions("churn", variant="churn@production", limit=1, client=logged)
    assert list(only["prediction_id"]) == ["a-1"]
    empty = loopml.predictions("nothing-here", client=logged)
    assert isinstance(empty, pd.DataFrame) and empty.empty and "prediction" in empty


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"since": "last tuesday"}, "ISO 8601"),
        ({"since": True}, "expected a time"),
        ({"limit": 0}, "limit"),
        ({"until": object()}, "expected a datetime"),
    ],
)
def test_bad_arguments_are_named(logged: Any, kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidParameterError, match=needle):
        loopml.predictions("churn", client=logged, **kwargs)


def test_feedback_ids_are_checked_before_anything_is_written(logged: Any) -> None:
    store = logged.open().metadata.predictions
    with pytest.raises(InvalidParameterError, match="prediction_id"):
        store.add_feedback([("a-1", "1", 1.0), ("../etc/passwd", "1", 1.0)])
    assert store.query("churn")[0].label is None
