"""Fixtures of the monitoring tests (the data and helpers are in ``monitor_world.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from monitor_world import Watched, build


@pytest.fixture
def watched(project: Path) -> Watched:
    return build(project)
