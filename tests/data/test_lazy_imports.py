"""Importing any ``loopml.data`` module loads no table or statistics library.

``import loopml`` must stay fast (DESIGN.md §6), and the data modules are imported by the
CLI and by ``loopml.dataset``; pyarrow, numpy, pandas, polars, scipy and rich load only
when a function that needs them is called.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import loopml.data

HEAVY = ("numpy", "pandas", "polars", "pyarrow", "scipy", "rich")


def test_importing_every_data_module_loads_no_heavy_library() -> None:
    folder = Path(loopml.data.__file__).parent
    modules = sorted(f"loopml.data.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__")
    assert {"loopml.data.datasets", "loopml.data.drift", "loopml.data.profile"} <= set(modules)
    code = (
        f"import sys, importlib\nfor m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(set({HEAVY!r}) & set(sys.modules)))"
    )
    src = str(folder.parents[1])
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
