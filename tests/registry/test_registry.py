"""The model registry in Python: versions from runs, aliases through gates, the audit history,
rollback, loading by alias with input checks.

Breast cancer from scikit-learn's bundled data; an evaluation suite judges the versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.errors import ConflictError, InvalidParameterError, LoopmlError, NotFoundError
from loopml.registry.promotion import PromotionRefusedError, promote, rollback
from loopml.tracking.client import Client

GATES = """
[project]
name = "t"

[models.cancer.gates.production]
suite = "cancer-holdout"
require = ["roc_auc >= 0.90", "log_loss <= 0.60"]
beats = { alias = "production", metric = "roc_auc", confidence = 0.95 }
validated_data = false
checks = ["gate_checks:small_enough"]
"""

CHECKS = '''
def small_enough(version):
    """A custom gate: the model's artifact digest is known and its run recorded metrics."""
    return bool(version.digest) and version.run_id is not None
'''


@pytest.fixture
def cancer(project: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "malignant"})
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.to_csv(project / "cancer.csv", index=False)
    (project / "loopml.toml").write_text(GATES)
    (project / "gate_checks.py").write_text(CHECKS)
    import sys

    sys.path.insert(0, str(project))
    loopml.create_suite(
        "cancer-holdout", data=str(project / "cancer.csv"), target="malignant", task="binary"
    )
    yield project
    sys.path.remove(str(project))
    sys.modules.pop("gate_checks", None)


def _train(c: float, only: str = "") -> str:
    """Run a pipeline that trains on the suite's training rows (on one column only, when
    ``only`` names it: a weak model that still takes the suite's columns); returns its label."""

    @loopml.step
    def fit(c: float, only: str) -> Any:
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X, y = loopml.suite("cancer-holdout").train()
        steps: list[Any] = [StandardScaler(), LogisticRegression(C=c, max_iter=500)]
        if only:
            steps.insert(0, ColumnTransformer([("one", "passthrough", [only])]))
        return make_pipeline(*steps).fit(X, y)

    @loopml.pipeline(name="train")
    def train(c: float = 1.0, only: str = "") -> None:
        fit(c, only)

    return train(c=c, only=only).label


def test_a_version_records_its_run_data_metrics_library_and_schema(cancer: Path) -> None:
    run = _train(1.0)
    version, created = loopml.register("cancer", run=run, output="fit")
    assert created and version.label == "cancer@1"
    again, created = loopml.register("cancer", run=run, output="fit")
    assert not created and again.number == 1
    assert version.source == f"{run}:fit" and version.run_id is not None
    assert version.datasets == ("cancer-holdout@1",)
    assert version.library == "sklearn" and version.library_version
    assert version.input_schema is not None
    assert len(version.input_schema["inputs"]) == 30
    assert version.output_schema == {"kind": "probabilities", "classes": [0, 1]}

    model = loopml.load("cancer@1")
    frame = pd.read_csv(cancer / "cancer.csv")
    probabilities = model.predict_proba(frame.drop(columns="malignant"))
    assert probabilities.shape == (len(frame), 2)
    with pytest.raises(LoopmlError, match="mean_radius"):
        model.predict(frame.drop(columns=["malignant", "mean_radius"]))


def test_promotion_through_gates_force_rollback_and_history(cancer: Path) -> None:
    good = loopml.register("cancer", run=_train(1.0), output="fit")[0]
    first = promote("cancer", good.number, to="production")
    assert first.moved and first.passed and first.previous is None
    gates = {g.gate: g for g in first.gates}
    assert gates["require roc_auc"].passed and gates["beats @production on roc_auc"].passed
    assert gates["check gate_checks:small_enough"].passed
    assert loopml.load("cancer@production").version.number == good.number

    weak = loopml.register("cancer", run=_train(1.0, only="mean_fractal_dimension"), output="fit")[
        0
    ]
    would = promote("cancer", weak.number, to="production", dry_run=True)
    assert not would.passed and not would.moved
    with pytest.raises(PromotionRefusedError, match="did not pass") as refused:
        promote("cancer", weak.number, to="production")
    failed = {g.gate for g in refused.value.promotion.gates if not g.passed}
    assert "beats @production on roc_auc" in failed and "require roc_auc" in failed
    assert Client().model_aliases("cancer") == {"production": good.number}  # nothing moved

    with pytest.raises(InvalidParameterError, match="needs a reason"):
        promote("cancer", weak.number, to="production", force=True)
    forced = promote("cancer", weak.number, to="production", force=True, reason="hotfix")
    assert forced.moved and forced.forced
    back = rollback("cancer", alias="production", reason="worse in production")
    assert (back.from_number, back.to_number) == (weak.number, good.number)
    history = Client().alias_history("cancer", "production")
    assert [(e.action, e.from_number, e.to_number, e.forced) for e in history] == [
        ("promote", None, good.number, False),
        ("promote", good.number, weak.number, True),
        ("rollback", weak.number, good.number, False),
    ]
    assert history[1].reason == "hotfix" and any(not g["passed"] for g in history[1].gates)
    assert "@" in history[0].by


def test_bad_references_and_gates_are_named(cancer: Path) -> None:
    version = loopml.register("cancer", run=_train(1.0), output="fit")[0]
    with pytest.raises(NotFoundError, match="No model named 'nope'"):
        loopml.load("nope@production")
    with pytest.raises(NotFoundError, match="No version 'cancer@9'"):
        promote("cancer", 9, to="production")
    with pytest.raises(NotFoundError, match="No alias 'cancer@staging'"):
        loopml.load("cancer@staging")
    for alias in ("with space", "a@b", "latest", ""):
        with pytest.raises(InvalidParameterError, match="Alias"):
            promote("cancer", version.number, to=alias)
    (cancer / "loopml.toml").write_text(
        GATES.replace('suite = "cancer-holdout"', 'suite = "missing-suite"').replace(
            "gate_checks:small_enough", "gate_checks:explodes"
        )
    )
    (cancer / "gate_checks.py").write_text(
        "def explodes(version):\n    raise RuntimeError('boom')\n"
    )
    import sys

    sys.modules.pop("gate_checks", None)
    from loopml.tracking import client as client_module

    client_module._clients.clear()
    with pytest.raises(PromotionRefusedError) as refused:
        promote("cancer", version.number, to="production")
    rows = {g.gate: g for g in refused.value.promotion.gates}
    assert "No suite named 'missing-suite'" in rows["suite missing-suite"].observed
    assert "RuntimeError: boom" in rows["check gate_checks:explodes"].observed
    assert Client().model_aliases("cancer") == {}


def test_a_version_held_by_an_alias_is_not_deleted_and_its_data_stays(cancer: Path) -> None:
    version = loopml.register("cancer", run=_train(1.0), output="fit")[0]
    promote("cancer", version.number, to="production")
    client = Client()
    with pytest.raises(ConflictError, match="held by alias @production"):
        client.delete_model_version("cancer@1")
    with pytest.raises(ConflictError, match="training data of model version cancer@1"):
        client.remove_dataset_version("cancer-holdout@1")
    client.gc(grace_s=0)
    assert loopml.load("cancer@production").version.number == version.number  # blob kept


def test_a_suite_evaluates_a_registered_version_by_reference(cancer: Path) -> None:
    loopml.register("cancer", run=_train(1.0), output="fit")
    promote("cancer", 1, to="staging")
    result = loopml.suite("cancer-holdout").evaluate("cancer@staging", resamples=50)
    assert result.model == "cancer@1" and result["roc_auc"].value > 0.9
    assert np.isfinite(result["log_loss"].value)


def test_promoting_a_version_of_another_model_is_refused(cancer: Path) -> None:
    loopml.register("cancer", run=_train(1.0), output="fit")
    loopml.register("other", {"weights": [1, 2]})
    with pytest.raises(InvalidParameterError, match="is a version of model 'other', not of"):
        promote("cancer", "other@1", to="production")
    assert promote("cancer", "cancer@1", to="staging").moved
    assert promote("cancer", "staging", to="production").version.number == 1
    assert Client().model_aliases("other") == {}


def test_xgboost_and_lightgbm_versions_load_and_check_their_input(cancer: Path) -> None:
    import lightgbm
    import xgboost

    X, y = loopml.suite("cancer-holdout").train()
    frame = pd.read_csv(cancer / "cancer.csv").drop(columns="malignant")
    for name, model in {
        "xgb": xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y),
        "lgbm": lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y),
    }.items():
        version, _ = loopml.register(name, model, X=X)
        assert version.library in ("xgboost", "lightgbm")
        loaded = loopml.load(f"{name}@1")
        expected = model.predict_proba(frame[list(X.columns)])
        shuffled = frame[list(reversed(X.columns))]  # columns in another order: put back
        assert np.array_equal(loaded.predict_proba(shuffled), expected)
        with pytest.raises(LoopmlError, match="mean_texture"):
            loaded.predict(frame.assign(mean_texture="high"))


def test_r05_promote_and_delete_of_one_version_never_leave_a_dangling_alias(
    client: Client,
) -> None:
    """R05 on each store backend: a promotion and a deletion of the same version race in two
    threads with their own connections; afterwards the alias holds an existing version or
    nothing, and exactly the outcome each call reported happened."""
    outcomes = [_race_once(client, i) for i in range(12)]
    print(
        f"\nR05: {sum(1 for p, _ in outcomes if p == 'moved')} promote-first, "
        f"{sum(1 for _, d in outcomes if d == 'deleted')} delete-first of {len(outcomes)}"
    )


def _race_once(client: Client, i: int) -> tuple[str, str]:
    import threading

    version, _ = loopml.register("race", {"weights": [i]}, client=client)
    a = Client(store_uri=client.settings.store_uri).open()
    b = Client(store_uri=client.settings.store_uri).open()
    start = threading.Barrier(2)
    result: dict[str, str] = {}

    def promoting() -> None:
        start.wait()
        try:
            promote("race", version.number, to="live", client=a)
            result["promote"] = "moved"
        except (ConflictError, NotFoundError) as exc:
            result["promote"] = type(exc).__name__

    def deleting() -> None:
        start.wait()
        try:
            b.delete_model_version(version.label)
            result["delete"] = "deleted"
        except (ConflictError, NotFoundError) as exc:
            result["delete"] = type(exc).__name__

    threads = [threading.Thread(target=promoting), threading.Thread(target=deleting)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a.close()
    b.close()
    holder = client.model_aliases("race").get("live")
    exists = any(v.number == version.number for v in client.model_versions("race"))
    assert (result["promote"] == "moved") == (holder == version.number), result
    assert (result["delete"] == "deleted") == (not exists), result
    assert not (result["promote"] == "moved" and result["delete"] == "deleted"), result
    if holder is not None:
        assert any(v.number == holder for v in client.model_versions("race"))
    return result["promote"], result["delete"]


def test_a_native_xgboost_booster_predicts_through_the_predictor(cancer: Path) -> None:
    import xgboost

    X, y = loopml.suite("cancer-holdout").train()
    booster = xgboost.train(
        {"objective": "binary:logistic"}, xgboost.DMatrix(X, label=y), num_boost_round=10
    )
    loopml.register("booster", booster, X=X)
    loaded = loopml.load("booster")
    assert np.array_equal(loaded.predict(X), booster.predict(xgboost.DMatrix(X)))


def test_a_step_registers_its_output_after_each_run(cancer: Path) -> None:
    from loopml.errors import PipelineDefinitionError

    @loopml.step(register="auto")
    def fit(c: float) -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X, y = loopml.suite("cancer-holdout").train()
        loopml.log_metric("train_rows", len(X))
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(X, y)

    @loopml.pipeline(name="auto-train")
    def auto_train(c: float = 1.0) -> None:
        fit(c)

    auto_train(c=1.0)
    auto_train(c=1.0)  # cached: the same artifact, the same version
    auto_train(c=0.1)
    versions = Client().model_versions("auto")
    assert [(v.number, v.source) for v in versions] == [
        (1, "auto-train#1:fit"),
        (2, "auto-train#3:fit"),
    ]
    assert versions[0].metrics["train_rows"] == 455  # 80 % of 569 rows
    assert versions[0].datasets == ("cancer-holdout@1",)
    assert versions[0].input_schema is not None  # the columns it was fitted on, from the data

    with pytest.raises(PipelineDefinitionError, match="Model name 'no good'"):
        loopml.step(register="no good")(lambda: 1)
    with pytest.raises(PipelineDefinitionError, match="needs a step with one output"):

        @loopml.step(register="x", outputs=("a", "b"))
        def two() -> tuple[int, int]:
            return 1, 2


class _Payload:
    """A pickle that writes a marker file when unpickled: what a hostile model file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.write_text, (self.marker, "pwned"))


def test_r26_a_model_file_from_outside_needs_trust_when_it_is_a_pickle(
    cancer: Path, tmp_path: Path
) -> None:
    import pickle

    import xgboost

    X, y = loopml.suite("cancer-holdout").train()
    booster = xgboost.train(
        {"objective": "binary:logistic"}, xgboost.DMatrix(X, label=y), num_boost_round=5
    )
    native = tmp_path / "model.ubj"
    booster.save_model(native)
    version, _ = loopml.register("outside", path=native, X=X)
    assert version.source == f"file {native}" and version.library == "xgboost"
    assert np.array_equal(loopml.load("outside").predict(X), booster.predict(xgboost.DMatrix(X)))

    marker = tmp_path / "marker"
    hostile = tmp_path / "model.pkl"
    hostile.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(InvalidParameterError, match="runs whatever code it holds.*--trust"):
        loopml.register("outside", path=hostile)
    assert not marker.exists()  # refused before anything was read

    from sklearn.linear_model import LogisticRegression

    mine = tmp_path / "mine.pkl"
    mine.write_bytes(pickle.dumps(LogisticRegression(max_iter=3000).fit(X, y)))
    trusted, created = loopml.register("outside", path=mine, trust=True)
    assert created and trusted.library == "sklearn"
    with pytest.raises(InvalidParameterError, match="unknown model format"):
        loopml.register("outside", path=cancer / "cancer.csv")


def test_any_model_with_predict_is_a_version_through_the_protocol(cancer: Path) -> None:
    import statsmodels.api as sm

    (cancer / "rules.py").write_text(
        "class Threshold:\n"
        "    def __init__(self, column, cut):\n"
        "        self.column, self.cut = column, cut\n"
        "    def predict(self, X):\n"
        "        return (X[self.column] > self.cut).astype(int).to_numpy()\n"
    )
    import rules  # type: ignore[import-not-found]

    X, y = loopml.suite("cancer-holdout").train()
    version, _ = loopml.register("rule", rules.Threshold("mean_radius", 15.0), X=X)
    assert version.library == "python"
    loaded = loopml.load("rule@1")
    assert np.array_equal(loaded.predict(X), (X["mean_radius"] > 15.0).astype(int).to_numpy())
    record = Client().artifact(version.digest)
    assert record.materializer == "model.pickle"

    results = sm.OLS(y.to_numpy(float), sm.add_constant(X[["mean_radius"]])).fit()
    ols, _ = loopml.register("ols", results)
    assert ols.library == "statsmodels"
    again = loopml.load("ols").model
    assert np.allclose(again.params, results.params)
    import sys

    sys.modules.pop("rules", None)


def test_a_gate_on_a_metric_the_suite_lacks_fails_with_the_metrics_it_has(cancer: Path) -> None:
    (cancer / "loopml.toml").write_text(
        '[project]\nname = "t"\n\n[models.cancer.gates.production]\n'
        'suite = "cancer-holdout"\nrequire = ["rmse <= 1", "roc_auc >> 2"]\n'
    )
    from loopml.tracking import client as client_module

    client_module._clients.clear()
    version = loopml.register("cancer", run=_train(1.0), output="fit")[0]
    verdict = promote("cancer", version.number, to="production", dry_run=True)
    rows = {g.gate: g for g in verdict.gates}
    assert not verdict.passed and rows["suite cancer-holdout"].passed
    assert "suite has no metric 'rmse' (it has roc_auc, pr_auc" in rows["require rmse"].observed
    assert "not a threshold" in rows["require roc_auc >> 2"].observed
