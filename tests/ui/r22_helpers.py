"""Helpers shared by the R22 browser tests (``test_ui_r22_security.py``, ``test_ui_r22_xss.py``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def drop_status_errors(watch: Any) -> None:
    """Forget the console lines Chromium writes for a page's own 4xx status (on purpose)."""
    watch.console_errors[:] = [
        e for e in watch.console_errors if "the server responded with a status of 4" not in e
    ]


def forget_project(root: Path) -> None:
    """Take a test's own project off ``sys.path`` and out of ``sys.modules``: later tests in
    this process must not find its ``pipelines`` module."""
    while str(root) in sys.path:
        sys.path.remove(str(root))
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(root.resolve()):
            del sys.modules[name]
