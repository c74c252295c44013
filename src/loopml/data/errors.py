"""Errors of the data layer.

The tree (under ``loopml.errors.LoopmlError``)::

    LoopmlError
    └── ValidationError(ValueError)   a table broke expectations of severity "error"; carries .report

It lives here rather than in ``loopml/errors.py`` because it carries a data-layer object
(the :class:`~loopml.data.validate_report.ValidationReport`), and the root module must
stay free of the layers above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.errors import LoopmlError

if TYPE_CHECKING:
    from loopml.data.validate_report import ValidationReport

_LISTED = 20


class ValidationError(LoopmlError, ValueError):
    """A table failed expectations of severity ``"error"``; ``.report`` has every violation."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        errors = report.errors
        n = len(errors)
        lines = [f"{n} validation error{'s' if n != 1 else ''} ({report.rows:,} rows checked):"]
        for v in errors[:_LISTED]:
            lines.append(f"  - {v.describe()}")
        if n > _LISTED:
            lines.append(f"  … and {n - _LISTED} more (see .report)")
        super().__init__("\n".join(lines))
