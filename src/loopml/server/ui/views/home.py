"""Placeholder: filled in by the home page."""

from __future__ import annotations

from loopml.server.ui import page_router

router = page_router()
