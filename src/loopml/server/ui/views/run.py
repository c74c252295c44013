"""Placeholder: filled in by the run page."""

from __future__ import annotations

from loopml.server.ui import page_router

router = page_router()
