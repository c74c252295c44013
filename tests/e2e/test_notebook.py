"""A real notebook on a real kernel: steps and a pipeline defined in cells, run, cached, redefined."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

SETUP = """
import json
import loopml
from loopml import pipeline, step

@step
def load(n: int) -> list:
    print("loading", n)
    return list(range(n))

@step
def total(data: list) -> int:
    loopml.log_metric("total", sum(data))
    return sum(data)

@pipeline
def nb_flow(n: int = 5):
    return total(load(n))
"""

RUN = """
run = nb_flow()
json.dumps({
    "status": run.status, "label": run.label, "output": run.output("total"), "metrics": run.metrics,
    "cached": {s.name: s.cached for s in run.steps}, "stdout": run.steps[0].stdout,
})
"""

REDEFINE = '''
@step
def total(data: list) -> int:
    """Now doubled."""
    loopml.log_metric("total", 2 * sum(data))
    return 2 * sum(data)
'''

DISPLAY = "run"


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec for this interpreter, found through JUPYTER_PATH."""
    name = "loopml-test"
    spec_dir = tmp_path / "jupyter" / "kernels" / name
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "loopml test kernel",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return name


def result_json(cell: Any) -> dict[str, Any]:
    """The JSON string a cell evaluated to (its Out[] value)."""
    results = [o for o in cell.outputs if o.get("output_type") == "execute_result"]
    assert len(results) == 1, f"expected one result in cell output: {cell.outputs}"
    return dict(json.loads(ast.literal_eval(results[0]["data"]["text/plain"])))


def stdout_of(cell: Any) -> str:
    return "".join(
        o["text"]
        for o in cell.outputs
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def notebook_client(nb: Any, kernel_name: str, cwd: Path) -> NotebookClient:
    return NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=120,
        startup_timeout=120,
        resources={"metadata": {"path": str(cwd)}},
    )


def test_pipeline_in_a_notebook_runs_caches_and_reruns_redefined_steps(
    project: Path, kernel_name: str
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (SETUP, RUN, REDEFINE, RUN, DISPLAY)]
    client = notebook_client(nb, kernel_name, project)
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)

        client.execute_cell(nb.cells[1], 1)
        first = result_json(nb.cells[1])
        assert first["status"] == "succeeded"
        assert first["label"] == "nb_flow#1"
        assert first["output"] == 10 and first["metrics"] == {"total": 10.0}
        assert first["cached"] == {"load": False, "total": False}
        assert first["stdout"] == "loading 5\n"

        client.execute_cell(nb.cells[1], 1)  # the same cell again
        again = result_json(nb.cells[1])
        assert again["label"] == "nb_flow#2"
        assert again["cached"] == {"load": True, "total": True}
        assert again["output"] == 10 and again["metrics"] == {"total": 10.0}

        client.execute_cell(nb.cells[2], 2)
        client.execute_cell(nb.cells[3], 3)
        redefined = result_json(nb.cells[3])
        assert redefined["cached"] == {"load": True, "total": False}
        assert redefined["output"] == 20 and redefined["metrics"] == {"total": 20.0}

        client.execute_cell(nb.cells[4], 4)
        results = [o for o in nb.cells[4].outputs if o.get("output_type") == "execute_result"]
        assert len(results) == 1
        page = results[0]["data"]["text/html"]
        assert "nb_flow#3" in page and "succeeded" in page and "(cached)" in page
        assert "<td>total</td>" in page
        assert "nb_flow#3" in results[0]["data"]["text/plain"]

    # the kernel wrote to the project's store, in the kernel's working directory
    from loopml import Client

    labels = sorted(r.label for r in Client().search_runs())
    assert labels == ["nb_flow#1", "nb_flow#2", "nb_flow#3"]
    assert (project / ".loopml").is_dir()


def test_cell_output_still_shows_after_a_pipeline_ran(project: Path, kernel_name: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (SETUP, RUN, "print('later cell')", RUN)]
    client = notebook_client(nb, kernel_name, project)
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    assert "loading 5" in stdout_of(nb.cells[1])  # a step's print shows live under its cell
    assert stdout_of(nb.cells[2]) == "later cell\n"
    assert "loading" not in stdout_of(nb.cells[3])  # cached: the step did not run
