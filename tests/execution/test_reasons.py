"""Why a step ran, or where its outputs came from (issue 12 §3).

Every step of a run records a reason: ``first`` (no earlier run), ``cached`` (the run and
step that made the outputs), ``changed`` (which code, parameter or input differs from the
latest earlier run of the step), ``no-cache`` (``--no-cache`` or ``@step(cache=False)``)
or ``retry`` (same key, but the earlier run failed or its outputs are gone). Users see it
as one line: ``StepRunRecord.why``, ``loopml run``, ``loopml runs show`` (``--json`` too)
and the notebook display.

The project is ``tests/resources/reasons_project`` (``pipelines.py`` and ``helpers.py``),
copied into each test's project folder and edited there as a user would.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from cli_runner import run_cli
from loopml import Run
from loopml.errors import StepFailedError

SOURCE = Path(__file__).parents[1] / "resources" / "reasons_project"
Loader = Callable[[], types.ModuleType]


@pytest.fixture
def user_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loader]:
    """The project's ``pipelines.py`` and ``helpers.py``; the loader imports them afresh."""
    for name in ("pipelines.py", "helpers.py"):
        shutil.copy(SOURCE / name, project / name)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # never a stale .pyc after an edit
    monkeypatch.syspath_prepend(str(project))

    def load() -> types.ModuleType:
        for module in ("pipelines", "helpers"):
            sys.modules.pop(module, None)
        importlib.invalidate_caches()
        return importlib.import_module("pipelines")

    yield load
    for module in ("pipelines", "helpers"):
        sys.modules.pop(module, None)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def by_name(run: Run) -> dict[str, Any]:
    return {s.name: s for s in run.steps}


def reasons(run: Run) -> dict[str, dict[str, Any] | None]:
    return {s.name: s.reason for s in run.steps}


def whys(run: Run) -> dict[str, str]:
    return {s.name: s.why for s in run.steps}


# Edits a user makes to helpers.py.
NEW_FORMULA = (
    "spread = max(abs(v) for v in centered) or 1.0",
    "spread = (sum(v * v for v in centered) / len(centered)) ** 0.5 or 1.0",
)
INLINE_CENTER = (
    "centered = _center(values)",
    "mean = sum(values) / len(values)\n    centered = [v - mean for v in values]",
)
CALL_CLIP = (
    "return [v / spread for v in centered]",
    "return _clip([v / spread for v in centered])\n\n\n"
    "def _clip(values: list[float]) -> list[float]:\n"
    "    return [min(max(v, -0.9), 0.9) for v in values]",
)


# -- in Python: the stored reason and its line -------------------------------------------


def test_a_first_run_says_there_is_no_earlier_run(user_project: Loader) -> None:
    run = user_project().train()
    assert not any(s.cached for s in run.steps)
    assert reasons(run) == {
        "load": {"kind": "first"},
        "prepare": {"kind": "first"},
        "fit": {"kind": "first"},
    }
    assert set(whys(run).values()) == {"no earlier run of this step"}


def test_a_cached_step_names_the_run_and_step_that_made_its_outputs(user_project: Loader) -> None:
    pipelines = user_project()
    first = pipelines.train()
    for _ in range(2):  # the third run still names the run that computed, not the previous one
        run = pipelines.train()
        assert all(s.cached for s in run.steps)
        assert reasons(run) == {
            name: {"kind": "cached", "run": first.label, "step": name}
            for name in ("load", "prepare", "fit")
        }
        assert whys(run)["prepare"] == f"from cache: run {first.label}, step prepare"


def test_a_parameter_change_names_the_parameter_and_both_values(user_project: Loader) -> None:
    pipelines = user_project()
    first = pipelines.train(alpha=0.5)
    run = pipelines.train(alpha=0.7)
    steps = by_name(run)
    assert {name: s.cached for name, s in steps.items()} == {
        "load": True,
        "prepare": True,
        "fit": False,
    }
    assert steps["fit"].reason == {
        "kind": "changed",
        "previous": first.label,
        "changes": [{"what": "param", "name": "alpha", "old": 0.5, "new": 0.7}],
    }
    assert steps["fit"].why == f"parameter alpha: 0.5 → 0.7 since {first.label}"


def test_a_long_parameter_shows_where_its_two_values_differ(user_project: Loader) -> None:
    pipelines = user_project()
    heading = "Quarterly revenue of the northern region and all of its subsidiaries, "
    first = pipelines.report(heading=heading + "draft")
    step = by_name(pipelines.report(heading=heading + "final"))["title"]
    assert step.why == (
        "parameter heading: … and all of its subsidiaries, draft → "
        f"… and all of its subsidiaries, final since {first.label}"
    )


def test_an_edited_helper_in_another_module_is_named_with_its_file(
    user_project: Loader, project: Path
) -> None:
    first = user_project().train()
    edit(project / "helpers.py", *NEW_FORMULA)
    run = user_project().train()
    steps = by_name(run)
    assert [steps["load"].cached, steps["prepare"].cached] == [True, False]
    assert steps["prepare"].reason == {
        "kind": "changed",
        "previous": first.label,
        "changes": [
            {
                "what": "code",
                "name": "helpers.standardize",
                "file": "helpers.py",
                "change": "changed",
            }
        ],
    }
    assert steps["prepare"].why == (
        f"code changed: `helpers.standardize` in helpers.py since {first.label}"
    )
    assert run.output("prepare") != first.output("prepare")


def test_a_helper_no_longer_called_and_a_new_helper_are_named(
    user_project: Loader, project: Path
) -> None:
    user_project().train()
    edit(project / "helpers.py", *INLINE_CENTER)
    removed = by_name(user_project().train())["prepare"]
    assert {
        "what": "code",
        "name": "helpers._center",
        "file": "helpers.py",
        "change": "removed",
    } in (removed.reason["changes"])
    assert "no longer calls `helpers._center` in helpers.py" in removed.why

    edit(project / "helpers.py", *CALL_CLIP)
    added = by_name(user_project().train())["prepare"]
    assert {"what": "code", "name": "helpers._clip", "file": "helpers.py", "change": "added"} in (
        added.reason["changes"]
    )
    assert "now calls `helpers._clip` in helpers.py" in added.why


def test_a_changed_input_names_the_input_and_both_digests(user_project: Loader) -> None:
    pipelines = user_project()
    first = pipelines.train(n=5)
    run = pipelines.train(n=6)
    old, new = first.outputs()["load"], run.outputs()["load"]
    steps = by_name(run)
    assert steps["load"].why == f"parameter n: 5 → 6 since {first.label}"
    assert steps["prepare"].reason == {
        "kind": "changed",
        "previous": first.label,
        "changes": [{"what": "input", "name": "values", "old": old, "new": new}],
    }
    assert steps["prepare"].why == (
        f"input values changed ({old[:12]} → {new[:12]}) since {first.label}"
    )


def test_no_cache_for_a_run_says_so_for_every_step(user_project: Loader) -> None:
    pipelines = user_project()
    pipelines.train()
    run = pipelines.train.run(cache=False)
    assert not any(s.cached for s in run.steps)
    assert set(whys(run).values()) == {"cache disabled for this run (--no-cache)"}
    assert {r["kind"] for r in reasons(run).values() if r} == {"no-cache"}


def test_a_step_with_cache_false_says_so_on_every_run(user_project: Loader) -> None:
    pipelines = user_project()
    for _ in range(2):
        step = pipelines.live().steps[0]
        assert not step.cached
        assert step.reason == {
            "kind": "no-cache",
            "why": "cache disabled for this step (cache=False)",
        }
        assert step.why == "cache disabled for this step (cache=False)"


def test_a_step_that_failed_with_the_same_key_is_retried(
    user_project: Loader, project: Path
) -> None:
    pipelines = user_project()
    (project / "FAIL").touch()
    with pytest.raises(StepFailedError):
        pipelines.retried()
    (project / "FAIL").unlink()
    run = pipelines.retried()
    step = run.steps[0]
    assert not step.cached and run.output("flaky") == 3
    assert step.reason == {"kind": "retry", "why": "the same step failed in retried#1"}
    assert step.why == "the same step failed in retried#1"
    assert pipelines.retried().steps[0].reason == {
        "kind": "cached",
        "run": run.label,
        "step": "flaky",
    }


# -- on the command line: `loopml run` and `loopml runs show --json` ---------------------


def step_lines(stderr: str) -> dict[str, str]:
    """``loopml run`` progress off a terminal: ``  <status>  <step>  <detail>`` per step."""
    found = {}
    for line in stderr.splitlines():
        match = re.match(r"\s+(\w+)\s+(\w+)\s+(.*)$", line)
        if match:
            found[match.group(2)] = f"{match.group(1)} {match.group(3)}"
    return found


def cli_run(*args: str, ok: bool = True) -> dict[str, str]:
    result = run_cli("run", *args)
    assert (result.returncode == 0) is ok, result.stdout + result.stderr
    return step_lines(result.stderr)


def shown(label: str) -> dict[str, dict[str, Any]]:
    result = run_cli("runs", "show", label, "--json")
    assert result.returncode == 0, result.stderr
    return {s["name"]: s for s in json.loads(result.stdout)["steps"]}


def test_each_reason_shows_in_loopml_run_and_in_runs_show_json(
    user_project: Loader, project: Path
) -> None:
    """One kind of reason per run, as a user meets them (helpers added or removed read like
    the edited helper here; their wording is checked above)."""

    def check(label: str, lines: dict[str, str], expected: dict[str, tuple[str, str]]) -> None:
        stored = shown(label)
        for step, (kind, why) in expected.items():
            assert why in lines[step], (step, lines)
            assert stored[step]["reason"]["kind"] == kind, stored[step]
            assert why in stored[step]["why"], stored[step]

    check(
        "train#1",
        cli_run("train"),
        {s: ("first", "no earlier run of this step") for s in ("load", "prepare", "fit")},
    )
    check(
        "train#2",
        cli_run("train"),
        {s: ("cached", f"from cache: run train#1, step {s}") for s in ("load", "prepare", "fit")},
    )
    check(
        "train#3",
        cli_run("train", "-p", "alpha=0.7", "-p", "n=6"),
        {
            "load": ("changed", "parameter n: 5 → 6"),
            "prepare": ("changed", "input values changed ("),
            "fit": ("changed", "parameter alpha: 0.5 → 0.7; input values changed ("),
        },
    )
    edit(project / "helpers.py", *NEW_FORMULA)
    check(
        "train#4",
        cli_run("train", "-p", "alpha=0.7", "-p", "n=6"),
        {
            "load": ("cached", "from cache: run train#3, step load"),
            "prepare": ("changed", "code changed: `helpers.standardize` in helpers.py"),
        },
    )
    check(
        "train#5",
        cli_run("train", "--no-cache"),
        {s: ("no-cache", "cache disabled for this run (--no-cache)") for s in ("load", "fit")},
    )
    check(
        "live#1",
        cli_run("live"),
        {"clock": ("no-cache", "cache disabled for this step (cache=False)")},
    )
    (project / "FAIL").touch()
    cli_run("retried", ok=False)
    (project / "FAIL").unlink()
    check(
        "retried#2", cli_run("retried"), {"flaky": ("retry", "the same step failed in retried#1")}
    )


# -- in a notebook: the Run's HTML display -----------------------------------------------

NOTEBOOK_SETUP = """
from loopml import pipeline, step

@step
def load(n: int) -> list:
    return list(range(n))

@step
def total(data: list) -> int:
    return sum(data)

@pipeline
def nb_flow(n: int = 5):
    return total(load(n))

nb_flow()
"""

SHOW_RUN = "nb_flow()"

REDEFINE_TOTAL = """
@step
def total(data: list) -> int:
    return 2 * sum(data)
"""


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec for this interpreter, found through JUPYTER_PATH."""
    name = "loopml-test"
    spec_dir = tmp_path / "jupyter" / "kernels" / name
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "loopml test", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return name


def displayed(cell: Any) -> tuple[str, str]:
    """The HTML and plain-text display of the value a cell evaluated to."""
    (result,) = [o for o in cell.outputs if o.get("output_type") == "execute_result"]
    return result["data"]["text/html"], result["data"]["text/plain"]


def step_row(page: str, step: str) -> str:
    match = re.search(rf"<tr><td>{step}</td>.*?</tr>", page)
    assert match, page
    return match.group(0)


def test_the_notebook_display_says_from_cache_and_names_a_redefined_step(
    project: Path, kernel_name: str
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(src)
        for src in (NOTEBOOK_SETUP, SHOW_RUN, REDEFINE_TOTAL, SHOW_RUN)
    ]
    client = NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=120,
        startup_timeout=120,
        resources={"metadata": {"path": str(project)}},
    )
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)

    cached, text = displayed(nb.cells[1])
    assert "nb_flow#2" in text
    assert "from cache: run nb_flow#1, step load" in step_row(cached, "load")
    assert "from cache: run nb_flow#1, step total" in step_row(cached, "total")

    redefined, _ = displayed(nb.cells[3])
    assert "from cache: run nb_flow#1, step load" in step_row(redefined, "load")
    assert "code changed: `total` in notebook since nb_flow#2" in step_row(redefined, "total")
