"""Helpers shared by the R22 browser tests (``test_ui_r22_security.py``, ``test_ui_r22_xss.py``)."""

from __future__ import annotations

from typing import Any

from ui_world import forget_project

__all__ = ["drop_status_errors", "forget_project"]


def drop_status_errors(watch: Any) -> None:
    """Forget the console lines Chromium writes for a page's own 4xx status (on purpose)."""
    watch.console_errors[:] = [
        e for e in watch.console_errors if "the server responded with a status of 4" not in e
    ]
