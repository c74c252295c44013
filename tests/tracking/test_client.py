"""``Client`` and ``loopml.runs``: finding runs, reading them back, store locations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pl_basic
import pytest

import loopml
from loopml import Client
from loopml.errors import FilterSyntaxError, NotFoundError
from loopml.tracking.client import default_client


def finished(
    name: str, *, params: dict[str, object], metrics: dict[str, float], status: str = "succeeded"
) -> loopml.Run:
    run = loopml.start_run(name)
    run.log_params(params)
    run.log_metrics(metrics)
    run.end(status)
    return run


def test_runs_returns_a_dataframe_filtered_by_metrics(client: Client) -> None:
    good = finished("exp", params={"alpha": 0.1}, metrics={"auc": 0.95})
    finished("exp", params={"alpha": 0.9}, metrics={"auc": 0.7})
    finished("exp", params={"alpha": 0.5}, metrics={"auc": 0.92}, status="failed")
    frame = loopml.runs("metrics.auc > 0.9")
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 2
    assert {
        "id",
        "run",
        "pipeline",
        "status",
        "started",
        "duration_s",
        "params.alpha",
        "metrics.auc",
    } <= set(frame.columns)
    assert sorted(frame["metrics.auc"]) == [0.92, 0.95]
    only = loopml.runs("metrics.auc > 0.9 and status = 'succeeded'")
    assert list(only["id"]) == [good.id]
    assert only["run"].iloc[0] == good.label
    assert only["params.alpha"].iloc[0] == "0.1"
    assert str(only["started"].dtype).startswith("datetime64")


def test_runs_of_an_empty_store_is_an_empty_frame() -> None:
    frame = loopml.runs()
    assert isinstance(frame, pd.DataFrame) and frame.empty


def test_runs_sort_and_limit(client: Client) -> None:
    for auc in (0.5, 0.9, 0.7):
        finished("exp", params={}, metrics={"auc": auc})
    frame = loopml.runs(sort="metrics.auc desc", limit=2)
    assert list(frame["metrics.auc"]) == [0.9, 0.7]


def test_bad_filter_points_at_the_mistake() -> None:
    with pytest.raises(FilterSyntaxError) as info:
        loopml.runs("metrics.auc >> 0.9")
    assert info.value.position >= 0
    assert "^" in str(info.value)


def test_get_run_by_label_id_and_prefix(client: Client) -> None:
    run = pl_basic.train(n=4)
    for ref in (run.id, run.id[:8], "train#1"):
        again = client.get_run(ref)
        assert again.id == run.id
        assert again.output("split.test") == [2, 3]
    with pytest.raises(NotFoundError):
        client.get_run("train#9")


def test_search_runs_returns_records_with_params_and_metrics(client: Client) -> None:
    pl_basic.train(n=4, alpha=0.5)
    pl_basic.train(n=4, alpha=0.25)
    records = client.search_runs("params.alpha = '0.25'")
    assert [r.label for r in records] == ["train#2"]
    (record,) = records
    assert record.status == "succeeded" and record.pipeline == "train" and record.number == 2
    assert record.metrics["auc"] == 0.95
    assert record.duration_s is not None and record.duration_s >= 0
    assert record.python_version


def test_default_client_is_per_project(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = default_client()
    assert default_client() is first
    other = tmp_path / "other"
    other.mkdir()
    (other / "loopml.toml").write_text('[project]\nname = "o"\n')
    monkeypatch.chdir(other)
    second = default_client()
    assert second is not first
    pl_basic.train(n=2)
    assert (other / ".loopml").is_dir()
    monkeypatch.chdir(project)
    assert default_client() is first
    assert first.search_runs() == []


def test_client_pointing_at_another_store(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    client = Client(store_uri=str(elsewhere / "meta.db"), artifacts_uri=str(elsewhere / "blobs"))
    run = pl_basic.train.run({"n": 2}, client=client)
    assert run.status == "succeeded"
    assert (elsewhere / "meta.db").exists() and (elsewhere / "blobs").is_dir()
    assert [r.id for r in client.search_runs()] == [run.id]
    assert Client().search_runs() == []
    assert "meta.db" in repr(client)
    client.close()


def test_environment_variables_override_the_store(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("LOOPML_STORE_URI", url)
    monkeypatch.setenv("LOOPML_ARTIFACTS_URI", str(tmp_path / "env-blobs"))
    run = pl_basic.train(n=2)
    assert (tmp_path / "env.db").exists()
    assert (tmp_path / "env-blobs").is_dir()
    assert not (project / ".loopml" / "store.db").exists()
    assert Client().get_run(run.id).output("load") == [0, 1]
