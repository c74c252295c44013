"""``loopml server``: the REST API (and the scheduler, and later the web UI) over one store.

Every route is a thin shell over the same library functions as the CLI (``Client``, the
registry's ``promote``, the scheduler's functions); see ``docs/server.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from loopml.server.app import create_app

        return create_app
    raise AttributeError(name)
