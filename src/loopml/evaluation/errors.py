"""Errors of the evaluation layer.

The tree (under ``loopml.errors.LoopmlError``)::

    LoopmlError
    └── EvaluationError(ValueError)   predictions or targets a metric cannot be computed from

It lives beside the metrics because only they know the rules a prediction must follow
(length, finite values, probabilities in [0, 1], what each metric needs); the message
names the metric or the input, the value found and the fix.
"""

from __future__ import annotations

from loopml.errors import LoopmlError


class EvaluationError(LoopmlError, ValueError):
    """Targets or predictions are unusable for the requested metrics; the message says why."""
