"""``import loopml`` is cheap and has no side effects (DESIGN.md §6: ≤ 0.06 s).

Each check runs in a fresh interpreter, in an empty folder, because this process has long
since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HEAVY = (
    "sqlalchemy",
    "pandas",
    "numpy",
    "pyarrow",
    "sklearn",
    "alembic",
    "rich",
    "ray",
    "torch",
    "fastapi",
    "onnxruntime",
)

PROBE = """
import json, os, signal, sys, threading
threads = threading.active_count()
files = sorted(os.listdir("."))
hook = sys.excepthook
sigterm = signal.getsignal(signal.SIGTERM)
{statement}
print(json.dumps({{
    "modules": sorted({{name.partition(".")[0] for name in sys.modules}}),
    "threads_before": threads,
    "threads_after": threading.active_count(),
    "thread_names": [t.name for t in threading.enumerate()],
    "files_before": files,
    "files_after": sorted(os.listdir(".")),
    "excepthook_kept": sys.excepthook is hook,
    "sigterm_kept": signal.getsignal(signal.SIGTERM) == sigterm,
}}))
"""


def probe(statement: str, cwd: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(statement=statement)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_import_loopml_is_lazy_and_quiet(empty: Path) -> None:
    seen = probe("import loopml", empty)
    heavy = sorted(set(HEAVY) & set(seen["modules"]))
    assert not heavy, f"`import loopml` imported {heavy}"
    assert seen["threads_after"] == seen["threads_before"], (
        f"threads started: {seen['thread_names']}"
    )
    assert seen["files_after"] == seen["files_before"] == [], (
        "`import loopml` created files in the cwd"
    )
    assert seen["excepthook_kept"] and seen["sigterm_kept"], (
        "`import loopml` installed process hooks"
    )


def test_step_and_pipeline_import_no_store_or_dataframes(empty: Path) -> None:
    seen = probe("from loopml import step, pipeline", empty)
    assert not {"sqlalchemy", "pandas", "numpy", "pyarrow", "alembic"} & set(seen["modules"])
    assert seen["threads_after"] == seen["threads_before"]
    assert seen["files_after"] == []


def test_defining_steps_and_pipelines_stays_light(empty: Path) -> None:
    statement = (
        "from loopml import step, pipeline\n"
        "@step\ndef double(x: int) -> int:\n    return 2 * x\n"
        "@pipeline\ndef twice(x: int = 1):\n    return double(double(x))\n"
        "assert double(2) == 4 and len(twice.dag(x=3)) == 2"
    )
    seen = probe(statement, empty)
    assert not {"sqlalchemy", "pandas", "numpy", "alembic"} & set(seen["modules"])
    assert seen["threads_after"] == seen["threads_before"]
    assert seen["files_after"] == []


def test_cli_entry_point_imports_only_click(empty: Path) -> None:
    seen = probe("import loopml.cli.main", empty)
    heavy = sorted(set(HEAVY) & set(seen["modules"]))
    assert not heavy, f"`loopml --help` would import {heavy}"
