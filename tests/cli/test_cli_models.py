"""``loopml models``, ``register``, ``promote``, ``rollback`` from the real command line, on the
project ``loopml init`` makes: its ``train`` pipeline registers each new model as a version
of ``diabetes``, so the registry is never empty after the first run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli_helpers import ENV, cli, cli_json

from cli_runner import run_cli


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    cli(tmp_path, "init", "demo")
    project = tmp_path / "demo"
    cli(project, "run", "train", "-p", "alpha=0.5")
    cli(project, "run", "train", "-p", "alpha=50")
    return project


def test_release_flow_with_gates_force_and_rollback(demo: Path) -> None:
    listed = cli_json(demo, "models")
    assert [(m["name"], m["version"]) for m in listed] == [("diabetes", 2)]
    shown = cli_json(demo, "models", "show", "diabetes")
    first, second = shown["versions"]
    assert first["source"].startswith("train#1") and first["datasets"] == ["diabetes@1"]
    assert "diabetes.rmse" in first["metrics"] and first["library"] == "sklearn"
    assert first["input_schema"] is not None

    same = cli_json(demo, "register", "diabetes", "--run", "train#1", "--output", "train")
    assert (same["version"], same["created"]) == (1, False)

    moved = cli_json(demo, "promote", "diabetes", "1", "--to", "production")
    assert moved["moved"] and moved["gates"] == []

    with (demo / "loopml.toml").open("a") as f:
        f.write(
            '\n[models.diabetes.gates.production]\nsuite = "diabetes"\n'
            'require = ["r2 >= 0.3"]\n'
            'beats = { alias = "production", metric = "rmse", confidence = 0.95 }\n'
        )
    dry = run_cli("promote", "diabetes", "2", "--to", "production", "--dry-run", cwd=demo, env=ENV)
    assert dry.returncode == 1, dry.stderr
    assert "FAIL" in dry.stdout and "require r2" in dry.stdout and "would be refused" in dry.stdout
    refused = run_cli("promote", "diabetes", "2", "--to", "production", cwd=demo, env=ENV)
    assert refused.returncode == 1 and "did not pass" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert cli_json(demo, "models", "show", "diabetes")["aliases"] == {"production": 1}

    no_reason = run_cli(
        "promote", "diabetes", "2", "--to", "production", "--force", cwd=demo, env=ENV
    )
    assert no_reason.returncode == 1 and "needs a reason" in no_reason.stderr
    forced = cli_json(
        demo, "promote", "diabetes", "2", "--to", "production", "--force", "--reason", "hotfix"
    )
    assert forced["moved"] and forced["forced"]
    back = cli_json(demo, "rollback", "diabetes", "--alias", "production", "--reason", "slow")
    assert (back["from_number"], back["to_number"]) == (2, 1)
    text = cli(demo, "models", "show", "diabetes").stdout
    assert "production: – → @1" in text and "forced" in text and "hotfix" in text
    assert "production=@1" in cli(demo, "models").stdout


def test_bad_input_is_named_and_moves_nothing(demo: Path) -> None:
    cases = [
        (("promote", "diabetes", "1", "--to", "prod uction"), "Alias 'prod uction'"),
        (("promote", "diabetes", "9", "--to", "production"), "No version 'diabetes@9'"),
        (("promote", "nope", "1", "--to", "production"), "No model named 'nope'"),
        (("models", "show", "nope"), "No model named 'nope'"),
        (
            ("register", "diabetes", "--run", "train#1", "--output", "nope"),
            "no output named 'nope'",
        ),
        (
            ("register", "bad/name", "--run", "train#1", "--output", "train"),
            "Model name 'bad/name'",
        ),
        (("rollback", "diabetes", "--alias", "production"), "holds no version"),
    ]
    for args, needle in cases:
        result = run_cli(*args, cwd=demo, env=ENV)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert needle in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert cli_json(demo, "models", "show", "diabetes")["aliases"] == {}
