"""``loopml suite``, ``suites``, ``eval``, ``leaderboard``, ``compare`` from the real command line.

A project trains two models in a pipeline on a suite's training rows; the CLI judges both on
the suite, stores and reuses the results, ranks them and compares them. Bad input exits
non-zero with a message and no traceback, and stores nothing.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _cli_helpers import ENV, cli, cli_json

from cli_runner import run_cli

PIPELINES = """
from __future__ import annotations

from typing import Any

import loopml
from loopml import pipeline, step


@step
def train(c: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = loopml.suite("cancer").train()
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(X, y)


@pipeline(name="train")
def train_pipeline(c: float = 1.0) -> None:
    train(c)
"""


@pytest.fixture
def suite_project(project: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "malignant"})
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.to_csv(project / "cancer.csv", index=False)
    (project / "pipelines.py").write_text(PIPELINES)
    (project / "loopml.toml").write_text('[project]\nname = "t"\npipelines = ["pipelines"]\n')
    return project


def test_define_evaluate_rank_and_compare(suite_project: Path) -> None:
    p = suite_project
    made = cli_json(
        p,
        "suite",
        "create",
        "cancer",
        "--data",
        "cancer.csv",
        "--target",
        "malignant",
        "--task",
        "binary",
        "--split",
        "stratified:test=0.3,seed=7",
    )
    assert (made["ref"], made["created"], made["test_rows"], made["data"]) == (
        "cancer@1",
        True,
        171,
        "cancer@1",
    )
    assert cli_json(p, "suites")[0]["split"] == "stratified:test=0.3,seed=7"
    cli(p, "run", "train", "-p", "c=1.0")
    cli(p, "run", "train", "-p", "c=0.0001")

    first = cli_json(
        p,
        "eval",
        "cancer",
        "--run",
        "train#1",
        "--output",
        "train",
        "--report",
        "r.html",
        "--resamples",
        "200",
    )
    assert not first["reused"] and first["model"] == "train#1:train"
    auc = first["metrics"]["roc_auc"]
    assert auc["low"] <= auc["value"] <= auc["high"] and auc["value"] > 0.95
    html = (p / "r.html").read_text()
    parser = _Tags()
    parser.feed(html)
    assert parser.svgs >= 4 and parser.scripts == 0  # ROC, PR, calibration, confusion
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # no CDN

    again = cli_json(
        p, "eval", "cancer", "--run", "train#1", "--output", "train", "--resamples", "200"
    )
    assert again["reused"] and again["id"] == first["id"]
    second = cli_json(
        p, "eval", "cancer", "--run", "train#2", "--output", "train", "--resamples", "200"
    )

    board = cli_json(p, "leaderboard", "cancer")
    assert [e["evaluation"] for e in board["entries"]] == sorted(
        [first["id"], second["id"]],
        key=lambda i: (
            -{first["id"]: auc["value"], second["id"]: second["metrics"]["roc_auc"]["value"]}[i]
        ),
    )
    result = cli_json(
        p, "compare", "cancer", f"#{first['id']}", f"#{second['id']}", "--resamples", "200"
    )
    metrics = {m["metric"]: m for m in result["metrics"]}
    assert metrics["roc_auc"]["diff"] == pytest.approx(
        auc["value"] - second["metrics"]["roc_auc"]["value"], abs=1e-12
    )
    assert metrics["log_loss"]["verdict"] == "a"  # C=1e-4 is badly under-fit: clearly worse

    linked = cli_json(p, "runs", "show", "train#1")["evaluations"]
    assert [(e["id"], e["suite"]) for e in linked] == [(first["id"], "cancer@1")]
    shown = cli(p, "leaderboard", "cancer").stdout
    assert "train#1:train" in shown and "ranked by roc_auc" in shown
    shown = cli(
        p, "eval", "cancer", "--run", "train#2", "--output", "train", "--resamples", "200"
    ).stdout
    assert "roc_auc" in shown and "stored result" in shown


def test_bad_input_exits_with_a_message_and_stores_nothing(suite_project: Path) -> None:
    p = suite_project
    cases = [
        (
            (
                "suite",
                "create",
                "x",
                "--data",
                "cancer.csv",
                "--target",
                "nope",
                "--task",
                "binary",
            ),
            "no target column 'nope'",
        ),
        (
            ("suite", "create", "x", "--data", "missing.csv", "--target", "y", "--task", "binary"),
            "missing.csv",
        ),
        (
            (
                "suite",
                "create",
                "x",
                "--data",
                "cancer.csv",
                "--target",
                "malignant",
                "--task",
                "binary",
                "--split",
                "stratified:tets=0.2",
            ),
            "tets",
        ),
        (
            (
                "suite",
                "create",
                "bad/name",
                "--data",
                "cancer.csv",
                "--target",
                "malignant",
                "--task",
                "binary",
            ),
            "Suite name 'bad/name'",
        ),
        (("eval", "nosuch", "--model", "abcdef"), "No suite named 'nosuch'"),
    ]
    for args, needle in cases:
        result = run_cli(*args, cwd=p, env=ENV)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert needle in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert cli_json(p, "suites") == []

    cli(
        p,
        "suite",
        "create",
        "cancer",
        "--data",
        "cancer.csv",
        "--target",
        "malignant",
        "--task",
        "binary",
    )
    cli(p, "run", "train")
    for args, needle in [
        (("eval", "cancer", "--run", "train#1", "--output", "nope"), "no output named 'nope'"),
        (("eval", "cancer", "--model", "0123456789ab"), "is neither a registered version"),
        (("leaderboard", "cancer", "--metric", "nope"), "no metric 'nope'"),
        (("compare", "cancer", "#98", "#99"), "No evaluation #98"),
    ]:
        result = run_cli(*args, cwd=p, env=ENV)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert needle in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    usage = run_cli("eval", "cancer", cwd=p, env=ENV)
    assert usage.returncode == 2 and "--run RUN --output OUTPUT" in usage.stderr
    assert (
        json.loads(run_cli("leaderboard", "cancer", "--json", cwd=p, env=ENV).stdout)["entries"]
        == []
    )


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.svgs = self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.svgs += tag == "svg"
        self.scripts += tag == "script"
