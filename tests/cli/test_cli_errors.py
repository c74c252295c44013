"""The CLI's one error shape: a non-zero exit and ``Error: <message>`` naming the thing and the fix.

No Python traceback reaches the user for a mistake (a failing *step* shows its own
traceback, which is the user's code), and nothing already stored is lost: after every
error the earlier runs are still listed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cli_runner import run_cli

ENV = {"LOOPML_STORE_URI": "", "LOOPML_ARTIFACTS_URI": "", "LOOPML_HEARTBEAT_SECONDS": "0.5"}
UNREACHABLE = "postgresql+psycopg://x@127.0.0.1:1/db"
FAILING_PIPELINE = """

@step
def boom(x: int = 1) -> int:
    raise ValueError(f"boom happened with x={x}")


@pipeline
def broken(x: int = 1):
    return boom(x=x)
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cli-errors")
    assert run_cli("init", "demo", cwd=base, env=ENV).returncode == 0
    project = base / "demo"
    with (project / "pipelines.py").open("a") as f:
        f.write(FAILING_PIPELINE)
    result = run_cli("run", "train", "-p", "alpha=0.5", cwd=project, env=ENV)
    assert result.returncode == 0, result.stderr
    return project


def stored_runs(project: Path) -> dict[str, str]:
    result = run_cli("runs", "--json", "--limit", "100", cwd=project, env=ENV)
    assert result.returncode == 0, result.stderr
    return {r["run"]: r["status"] for r in json.loads(result.stdout)}


def assert_nothing_lost(project: Path) -> None:
    """The run every test starts from is still listed, unchanged (other tests may add runs)."""
    assert stored_runs(project).get("train#1") == "succeeded"


def assert_error(
    result: subprocess.CompletedProcess[str], *needles: str, lines: int | None = 1
) -> None:
    """Non-zero exit; stderr is ``Error: …`` (``lines`` long) naming every needle; no traceback."""
    err = result.stderr
    assert result.returncode != 0, (result.stdout, err)
    assert "Traceback" not in err and "Internal error" not in err, err
    assert err.startswith("Error: "), err
    if lines is not None:
        assert len(err.strip().splitlines()) == lines, err
    for needle in needles:
        assert needle in err, (needle, err)


CASES = [
    pytest.param(
        ("run", "trian"),
        ("Unknown pipeline 'trian'", "['broken', 'train']", "Did you mean 'train'?"),
        1,
        id="unknown-pipeline",
    ),
    pytest.param(
        ("run", "train", "-p", "beta=1"),
        ("no parameter 'beta'", "['alpha', 'test_fraction', 'seed']"),
        1,
        id="unknown-parameter",
    ),
    pytest.param(
        ("run", "train", "-p", "alpah=0.5"),
        ("'alpah'", "Did you mean 'alpha'?"),
        1,
        id="misspelt-parameter",
    ),
    pytest.param(
        ("run", "train", "-p", "alpha=abc"),
        ("'alpha'", "'abc'", "expected a number"),
        1,
        id="unparsable-value",
    ),
    pytest.param(
        ("run", "train", "-p", "alpha"),
        ("'alpha'", "KEY=VALUE", "-p alpha=0.5"),
        1,
        id="not-key-value",
    ),
    pytest.param(
        ("runs", "--filter", "metrics.rmse <"),
        ("after '<'", "at position 14"),
        3,
        id="filter-ends-early",
    ),
    pytest.param(
        ("runs", "--filter", "metrics.rmse << 3"),
        ("found '<'", "at position 14"),
        3,
        id="filter-bad-token",
    ),
    pytest.param(
        ("runs", "--sort", "bogus"),
        ("'bogus'", "metrics.bogus", "position 0"),
        3,
        id="unknown-sort-key",
    ),
    pytest.param(
        ("runs", "show", "deadbeef"), ("'deadbeef'", "loopml runs"), 1, id="unknown-run-id"
    ),
    pytest.param(
        ("runs", "show", "train#9"), ("'train#9'", "loopml runs"), 1, id="unknown-run-number"
    ),
    pytest.param(
        ("runs", "show", "ab"), ("'ab'", "at least 4 characters"), 1, id="run-prefix-too-short"
    ),
    pytest.param(
        ("runs", "compare", "train#1", "train#7"), ("'train#7'",), 1, id="compare-unknown-run"
    ),
    pytest.param(("lineage", "train#9"), ("'train#9'",), 1, id="lineage-unknown-run"),
    pytest.param(
        ("artifacts", "show", "abcdef12"),
        ("'abcdef12'", "loopml artifacts list"),
        1,
        id="unknown-artifact",
    ),
    pytest.param(
        ("artifacts", "get", "abcdef12", "-o", "x.parquet"),
        ("'abcdef12'", "loopml artifacts list"),
        1,
        id="get-unknown-artifact",
    ),
    pytest.param(
        ("artifacts", "show", "xyz"),
        ("'xyz'", "at least 6 hex characters"),
        1,
        id="bad-artifact-ref",
    ),
]


@pytest.mark.parametrize(("args", "needles", "lines"), CASES)
def test_user_mistakes_get_one_error_line_and_lose_nothing(
    demo: Path, args: tuple[str, ...], needles: tuple[str, ...], lines: int
) -> None:
    assert_error(run_cli(*args, cwd=demo, env=ENV), *needles, lines=lines)
    assert_nothing_lost(demo)
    assert not (demo / "x.parquet").exists()


def test_init_into_a_non_empty_folder(demo: Path) -> None:
    assert_error(
        run_cli("init", "demo", cwd=demo.parent, env=ENV), "'demo'", "not empty", "--force"
    )
    assert_nothing_lost(demo)
    assert "def boom" in (demo / "pipelines.py").read_text()  # not overwritten


def test_unknown_command_suggests_the_right_one(demo: Path) -> None:
    result = run_cli("rnu", cwd=demo, env=ENV)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Error: No command 'rnu'. Did you mean 'run'?" in result.stderr


def test_a_failing_step_shows_its_own_traceback_and_is_recorded_failed(demo: Path) -> None:
    before = stored_runs(demo)
    result = run_cli("run", "broken", "-p", "x=7", cwd=demo, env=ENV)
    assert result.returncode == 1
    err = result.stderr
    assert "Internal error" not in err
    trace = err[err.index("Traceback (most recent call last):") : err.index("\nError: ")]
    assert 'pipelines.py", line' in trace and "in boom" in trace
    assert trace.rstrip().endswith("ValueError: boom happened with x=7")
    assert (
        "loopml/execution" not in trace and "concurrent/futures" not in trace
    )  # only the user's frames
    error_lines = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert (
        len(error_lines) == 1
        and "Step 'boom' failed" in error_lines[0]
        and "boom happened" in error_lines[0]
    )
    assert "loopml runs show" in err
    after = stored_runs(demo)
    assert after == {**before, "broken#1": "failed"}
    shown = json.loads(run_cli("runs", "show", "broken#1", "--json", cwd=demo, env=ENV).stdout)
    assert shown["steps"][0]["status"] == "failed"
    assert "boom happened with x=7" in shown["steps"][0]["traceback"]


def test_an_unreachable_store_is_named_with_the_fix(demo: Path) -> None:
    for args in (("runs",), ("run", "train"), ("artifacts", "list"), ("fsck",)):
        result = run_cli(*args, cwd=demo, env={**ENV, "LOOPML_STORE_URI": UNREACHABLE})
        assert_error(result, UNREACHABLE, "Connection refused", "LOOPML_STORE_URI")
    assert_nothing_lost(demo)


BROKEN_CONFIGS = [
    pytest.param(
        '[project]\nname = "demo"\nbogus = 1\n',
        ("'bogus'", "[project]", "['name', 'pipelines']"),
        id="unknown-key",
    ),
    pytest.param(
        '[project]\nname = "demo"\n[stor]\nuri = "x"\n',
        ("[stor]", "Did you mean 'store'?"),
        id="unknown-section",
    ),
    pytest.param('[run]\nworkers = "many"\n', ("workers", "'many'", "int"), id="wrong-type"),
    pytest.param('[project\nname = "demo"\n', ("loopml.toml", "not valid TOML"), id="not-toml"),
]


@pytest.mark.parametrize(("text", "needles"), BROKEN_CONFIGS)
def test_a_broken_loopml_toml_is_named(demo: Path, text: str, needles: tuple[str, ...]) -> None:
    config = demo / "loopml.toml"
    good = config.read_text()
    config.write_text(text)
    try:
        for args in (("runs",), ("run", "train")):
            assert_error(run_cli(*args, cwd=demo, env=ENV), *needles)
    finally:
        config.write_text(good)
    assert_nothing_lost(demo)
