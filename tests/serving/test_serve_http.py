"""The online serving app over real HTTP: every body format, the probes, metrics, OpenAPI,
feedback joined to the prediction log, a regressor, and a model without a schema.

Every test starts the app on uvicorn on 127.0.0.1 (``serve_server.running``) and talks to
it with httpx; answers are compared with calling the registered model directly.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

import loopml
from loopml.errors import InvalidParameterError
from loopml.serving.app import create_app
from serve_server import churn_frame, register_classifier, register_regressor, running

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client for the module (building one costs more than a request)."""
    with httpx.Client(timeout=60) as c:
        yield c


def _bodies(X: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    """The same rows in every format /predict reads."""
    records = X.to_dict("records")
    split = {"columns": list(X.columns), "data": X.to_numpy(dtype=object).tolist()}
    as_json = {
        "records-list": records,
        "records-object": {"records": records},
        "columns-data": split,
        "inputs": {"inputs": {c: X[c].tolist() for c in X.columns}},
        "mlflow-records": {"dataframe_records": records},
        "mlflow-split": {"dataframe_split": split},
    }
    out = {k: (json.dumps(v).encode(), "application/json") for k, v in as_json.items()}
    out["csv"] = (X.to_csv(index=False).encode(), "text/csv")
    buffer = io.BytesIO()
    X.to_parquet(buffer, index=False)
    out["parquet"] = (buffer.getvalue(), "application/vnd.apache.parquet")
    return out


def _metrics(http: httpx.Client, url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    r = http.get(f"{url}/metrics")
    assert r.status_code == 200
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_body_format_answers_like_the_model(http: httpx.Client) -> None:
    _, model = register_classifier()
    X, _ = churn_frame(25, seed=3)
    want_p = model.predict_proba(X)
    want = model.predict(X)
    app = create_app("churn", runtime="native")
    seen: list[str] = []
    with running(app) as url:
        for name, (body, content_type) in _bodies(X).items():
            r = http.post(f"{url}/predict", content=body, headers={"content-type": content_type})
            assert r.status_code == 200, (name, r.text)
            out = r.json()
            assert out["model"] == "churn" and out["version"] == 1, name
            assert out["variant"] == "churn", name
            assert out["classes"] == [0, 1], name
            np.testing.assert_allclose(out["probabilities"], want_p, rtol=0, atol=1e-9)
            assert out["predictions"] == want.tolist(), name
            assert len(out["prediction_ids"]) == len(X), name
            seen += out["prediction_ids"]
    assert len(set(seen)) == len(seen) == 8 * len(X)


def test_default_runtime_answers_like_the_native_model(http: httpx.Client) -> None:
    _, model = register_classifier()
    X, _ = churn_frame(40, seed=5)
    app = create_app("churn")  # auto: ONNX Runtime when its answers match
    with running(app) as url:
        r = http.post(f"{url}/predict", json={"records": X.to_dict("records")})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["probabilities"], model.predict_proba(X), atol=1e-4)
    assert r.json()["predictions"] == model.predict(X).tolist()


def test_probes_and_schema_list_the_model(http: httpx.Client) -> None:
    register_classifier()
    app = create_app("churn", runtime="native")
    with running(app) as url:
        assert http.get(f"{url}/health").json() == {"status": "ok"}
        ready = http.get(f"{url}/ready")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True
        assert [(v["ref"], v["version"]) for v in ready.json()["variants"]] == [("churn", 1)]
        schema = http.get(f"{url}/schema").json()
    assert schema["model"] == "churn" and schema["version"] == 1
    assert [(c["name"], c["kind"]) for c in schema["inputs"]] == [
        ("age", "integer"),
        ("income", "float"),
        ("plan", "string"),
    ]
    assert schema["outputs"]["classes"] == [0, 1]


def test_metrics_count_requests_latency_classes_and_the_log(http: httpx.Client) -> None:
    register_classifier()
    X, _ = churn_frame(30, seed=7)
    app = create_app("churn", runtime="native")
    with running(app) as url:
        before = _metrics(http, url)
        ok = [
            http.post(f"{url}/predict", json=X.iloc[i : i + 10].to_dict("records")) for i in (0, 10)
        ]
        bad = http.post(f"{url}/predict", json=[{"age": "old", "income": 1.0, "plan": "pro"}])
        app.state.serve.log.flush()
        after = _metrics(http, url)
    assert [r.status_code for r in ok] == [200, 200] and bad.status_code == 422

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("loopml_requests_total", route="predict", code="200") == 2
    assert moved("loopml_requests_total", route="predict", code="422") == 1
    assert moved("loopml_request_seconds_count", route="predict") == 3
    assert moved("loopml_request_seconds_bucket", route="predict", le="+Inf") == 3
    predicted = np.concatenate([r.json()["predictions"] for r in ok])
    for cls in (0, 1):
        n = int((predicted == cls).sum())
        assert moved("loopml_predicted_class_total", variant="churn", cls=str(cls)) == n
    assert moved("loopml_rows_predicted_total", variant="churn") == 20
    assert moved("loopml_prediction_log_written_rows") == 20
    assert after[("loopml_prediction_log_dropped_rows", ())] == 0


def test_openapi_request_schema_lists_the_columns(http: httpx.Client) -> None:
    register_classifier()
    app = create_app("churn", runtime="native")
    with running(app) as url:
        doc = http.get(f"{url}/openapi.json").json()
    body = doc["paths"]["/predict"]["post"]["requestBody"]
    assert {"application/json", "text/csv", "application/vnd.apache.parquet"} <= set(
        body["content"]
    )
    records = body["content"]["application/json"]["schema"]["oneOf"][0]
    record = records["items"]
    assert record["properties"] == {
        "age": {"type": "integer"},
        "income": {"type": "number"},
        "plan": {"enum": ["basic", "pro", "team"]},
    }
    assert sorted(record["required"]) == ["age", "income", "plan"]


def test_feedback_is_joined_to_the_logged_predictions(client: Any, http: httpx.Client) -> None:
    register_classifier(client=client)
    register_classifier(C=0.05, client=client)  # version 2: the shadow
    X, _ = churn_frame(8, seed=11)
    app = create_app("churn@1", shadow="churn@2", runtime="native", client=client)
    with running(app) as url:
        first = http.post(f"{url}/predict", json=X.iloc[:4].to_dict("records")).json()
        between = time.time()
        second = http.post(f"{url}/predict", json=X.iloc[4:].to_dict("records")).json()
        ids = first["prediction_ids"] + second["prediction_ids"]
        labels = [1, 0, 1, 1, 0]
        items = [{"prediction_id": i, "label": v} for i, v in zip(ids, labels, strict=False)]
        forms: list[Any] = [items[0], items[1:3], {"feedback": items[3:5]}]
        answers = [http.post(f"{url}/feedback", json=form) for form in forms]
    assert [(r.status_code, r.json()) for r in answers] == [
        (200, {"accepted": 1}),
        (200, {"accepted": 2}),
        (200, {"accepted": 2}),
    ]
    # Leaving the block shut the app down: the shadow pool and the log are drained.
    frame = loopml.predictions("churn", client=client)
    answered = frame[frame["variant"] == "churn@1"].set_index("prediction_id")
    shadow = frame[frame["variant"] == "shadow:churn@2"]
    assert sorted(answered.index) == sorted(ids)
    assert frame["prediction_id"].is_unique
    assert len(shadow) == len(ids)  # one shadow row per answered row, never two
    got = answered.loc[ids[:5], "label"].tolist()
    assert got == labels
    assert answered.loc[ids[5:], "label"].isna().all()
    want = np.array(first["predictions"] + second["predictions"])
    assert answered.loc[ids, "prediction"].tolist() == want.tolist()
    pd.testing.assert_frame_equal(
        answered.loc[ids, ["age", "income", "plan"]].reset_index(drop=True),
        X.reset_index(drop=True),
        check_dtype=False,
    )
    # A shadow row joins the label of the row it shadowed.
    by_origin = shadow.set_index(shadow["prediction_id"].str.removesuffix(".s"))
    assert by_origin.loc[ids[:5], "label"].tolist() == labels
    early = loopml.predictions("churn", until=between, variant="churn@1", client=client)
    late = loopml.predictions("churn", since=between, variant="churn@1", client=client)
    assert sorted(early["prediction_id"]) == sorted(first["prediction_ids"])
    assert sorted(late["prediction_id"]) == sorted(second["prediction_ids"])


BAD_FEEDBACK = [
    (b'{"id": "abc-1", "label": 1}', "prediction_id"),
    (b'{"prediction_id": "abc-1", "label": 1, "extra": 2}', "prediction_id"),
    (b'[{"prediction_id": "abc-1", "label": 1}, 3]', "prediction_id"),
    (b'{"feedback": {"prediction_id": "abc-1"}}', "prediction_id"),
    (b'{"prediction_id": "../../etc/passwd", "label": 1}', "prediction_id"),
    (b'{"prediction_id": 12, "label": 1}', "prediction_id"),
    (b'{"prediction_id": "abc-1", "label": NaN}', "label"),
    (b'{"prediction_id": "abc-1", "label": Infinity}', "label"),
    (b'{"prediction_id": "abc-1", "label": 1e309}', "label"),
    (b'{"prediction_id": "abc-1", "label": [1]}', "label"),
    (json.dumps({"prediction_id": "abc-1", "label": "x" * 10_000}).encode(), "label"),
    (b'{"feedback": [{"prediction_id": "abc-1", "label": null}]}', "label"),
]


def test_bad_feedback_is_422_naming_the_field(http: httpx.Client) -> None:
    register_classifier()
    app = create_app("churn", runtime="native", log_sample=0)
    with running(app) as url:
        answers = [http.post(f"{url}/feedback", content=b, headers=JSON) for b, _ in BAD_FEEDBACK]
        counted = _metrics(http, url)
    for (body, field), r in zip(BAD_FEEDBACK, answers, strict=True):
        assert r.status_code == 422, (body[:80], r.text)
        (problem,) = r.json()["detail"]
        assert problem["loc"][0] == "body"
        assert field in problem["loc"] or field in problem["msg"], (body[:80], problem)
        assert len(r.text) < 1_000  # a 10,000-character label is not echoed back
    key = ("loopml_requests_total", (("code", "422"), ("route", "feedback")))
    assert counted[key] == len(BAD_FEEDBACK)


def test_regressor_answers_like_the_model(http: httpx.Client) -> None:
    from sklearn.datasets import load_diabetes

    _, model = register_regressor()
    X = load_diabetes(as_frame=True).data.iloc[:50]
    app = create_app("price", runtime="native")
    with running(app) as url:
        r = http.post(
            f"{url}/predict", json={"columns": list(X.columns), "data": X.values.tolist()}
        )
        csv = http.post(
            f"{url}/predict", content=X.to_csv(index=False), headers={"content-type": "text/csv"}
        )
        metrics = _metrics(http, url)
    assert r.status_code == 200, r.text
    out = r.json()
    assert "probabilities" not in out and "classes" not in out
    np.testing.assert_allclose(out["predictions"], model.predict(X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(csv.json()["predictions"], model.predict(X), rtol=0, atol=1e-9)
    assert metrics[("loopml_prediction_value_count", (("variant", "price"),))] == 100


def test_a_model_without_a_schema_is_refused_at_start() -> None:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.arange(10.0).reshape(-1, 1), np.arange(10.0))
    loopml.register("bare", model)
    with pytest.raises(InvalidParameterError, match=r"no input schema.*X="):
        create_app("bare", runtime="native")
