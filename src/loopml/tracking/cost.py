"""What a run cost: the one formula, used by pipelines and ad-hoc runs alike.

Each step pays for what it declared while it ran: ``cpus`` × CPU-hour price, ``gpus`` ×
GPU-hour price, and its declared ``memory`` × GB-hour price. Memory that no step declared
is charged once for the whole run, at the process's peak: steps that overlap share one
process, so charging each its own "peak" would bill the same bytes several times.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from loopml.config import Prices

GB = 1024**3


@dataclass(frozen=True, slots=True)
class Usage:
    """What one step (or an ad-hoc run) held while it ran."""

    wall_s: float
    cpus: float = 1.0
    gpus: float = 0.0
    memory_bytes: int | None = None  # declared with @step(memory=…); None: measured


def run_cost(
    prices: Prices, usages: Iterable[Usage], *, run_wall_s: float, peak_bytes: int
) -> float:
    """The cost of a run, in ``prices.currency``."""
    total = 0.0
    undeclared = False
    for u in usages:
        hours = max(u.wall_s, 0.0) / 3600
        total += hours * (u.cpus * prices.cpu_hour + u.gpus * prices.gpu_hour)
        if u.memory_bytes is not None:
            total += hours * (u.memory_bytes / GB) * prices.gb_hour
        else:
            undeclared = True
    if undeclared:
        total += max(run_wall_s, 0.0) / 3600 * (peak_bytes / GB) * prices.gb_hour
    return total if math.isfinite(total) else 0.0


def format_cost(cost: float | None, currency: str = "USD") -> str:
    """``"< 0.01 USD"``, ``"1.37 USD"``; ``"–"`` when unknown."""
    if cost is None or not math.isfinite(cost):
        return "–"
    if cost == 0:
        return f"0 {currency}"
    if cost < 0.01:
        return f"< 0.01 {currency}"
    return f"{cost:,.2f} {currency}"
