"""Project helpers used by a step: editing them changes the step's cache key."""

from __future__ import annotations


def _center(values: list[float]) -> list[float]:
    mean = sum(values) / len(values)
    return [v - mean for v in values]


def standardize(values: list[float]) -> list[float]:
    centered = _center(values)
    spread = max(abs(v) for v in centered) or 1.0
    return [v / spread for v in centered]
