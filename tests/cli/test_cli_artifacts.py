"""``loopml artifacts list|show|get``: what a run stored, and getting it back out as a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cli_runner import run_cli
from loopml.config import load_settings
from loopml.tracking.client import Client

ENV = {"LOOPML_STORE_URI": "", "LOOPML_ARTIFACTS_URI": "", "LOOPML_HEARTBEAT_SECONDS": "0.5"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cli-artifacts")
    assert run_cli("init", "demo", cwd=base, env=ENV).returncode == 0
    project = base / "demo"
    result = run_cli("run", "train", "-p", "alpha=0.5", cwd=project, env=ENV)
    assert result.returncode == 0, result.stderr
    return project


def cli_json(project: Path, *args: str) -> Any:
    result = run_cli(*args, "--json", cwd=project, env=ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _outputs(project: Path) -> dict[str, str]:
    return {
        a["name"]: a["digest"]
        for a in cli_json(project, "runs", "show", "train#1")["artifacts"]
        if a["direction"] == "output"
    }


def _client(project: Path) -> Client:
    root = project / ".loopml"
    return Client(
        load_settings(project),
        store_uri=f"sqlite:///{root / 'store.db'}",
        artifacts_uri=str(root / "blobs"),
    )


def test_artifacts_list(demo: Path) -> None:
    records = cli_json(demo, "artifacts", "list")
    by_digest = {r["digest"]: r for r in records}
    outputs = _outputs(demo)
    assert set(outputs.values()) <= set(by_digest)
    frame = by_digest[outputs["load"]]
    assert frame["materializer"] == "pandas.parquet" and frame["type_name"].endswith("DataFrame")
    assert frame["size"] > 0 and frame["metadata"]
    of_run = cli_json(demo, "artifacts", "list", "--run", "train#1")
    assert set(outputs.values()) <= {r["digest"] for r in of_run}
    assert len(cli_json(demo, "artifacts", "list", "--limit", "1")) == 1
    table = run_cli("artifacts", "list", cwd=demo, env=ENV)
    assert table.returncode == 0, table.stderr
    assert {"digest", "type", "materializer", "size", "created"} <= set(
        table.stdout.splitlines()[0].split()
    )
    assert outputs["load"][:12] in table.stdout


def test_artifacts_show_by_prefix(demo: Path) -> None:
    digest = _outputs(demo)["load"]
    record = cli_json(demo, "artifacts", "show", digest[:8])
    assert record["digest"] == digest and record["materializer"] == "pandas.parquet"
    text = run_cli("artifacts", "show", digest[:8], cwd=demo, env=ENV)
    assert text.returncode == 0, text.stderr
    assert digest in text.stdout and "pandas.parquet" in text.stdout and "size" in text.stdout


def test_artifacts_get_writes_a_parquet_file_equal_to_the_stored_frame(
    demo: Path, tmp_path: Path
) -> None:
    digest = _outputs(demo)["load"]
    target = tmp_path / "out.parquet"
    result = run_cli("artifacts", "get", digest, "-o", str(target), cwd=demo, env=ENV)
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout
    client = _client(demo)
    try:
        expected = client.load_artifact(digest)
    finally:
        client.close()
    pd.testing.assert_frame_equal(pd.read_parquet(target), expected)


def test_artifacts_get_defaults_to_digest_and_extension(demo: Path) -> None:
    digest = _outputs(demo)["load"]
    result = run_cli("artifacts", "get", digest[:10], cwd=demo, env=ENV)
    assert result.returncode == 0, result.stderr
    written = demo / f"{digest[:12]}.parquet"
    assert written.is_file()
    assert len(pd.read_parquet(written)) == 442
