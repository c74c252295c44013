"""``loopml.load``: get a stored value back by digest."""

from __future__ import annotations

from typing import Any


def load(ref: str) -> Any:
    """Load an artifact of the current project by digest or unique prefix (verified on read).

    Example:
        >>> import loopml
        >>> model = loopml.load("3f2a9c")   # doctest: +SKIP
    """
    from loopml.tracking.client import default_client

    return default_client().load_artifact(ref)
