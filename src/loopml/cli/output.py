"""Shared CLI options and output: ``--json`` everywhere, Rich tables on a terminal."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(fn: F) -> F:
    """``--json``: print machine-readable JSON instead of a table (same on every command)."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table."
    )(fn)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def print_json(data: Any) -> None:
    click.echo(json.dumps(_clean(data), indent=2, sort_keys=True, default=str))


def console() -> Any:
    from rich.console import Console

    # Off a terminal (pipes, CI logs) use a wide fixed width so tables never wrap mid-word.
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def fmt_time(ts: float | None) -> str:
    return "–" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def fmt_num(value: Any) -> str:
    if isinstance(value, float):
        return str(value) if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def fmt_cost(cost: float | None) -> str:
    """Costs of small runs are fractions of a cent: keep their significant digits."""
    if cost is None:
        return "–"
    if cost == 0 or cost >= 0.01:
        return f"{cost:.4f}"
    return f"{cost:.2e}"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def text(value: Any, style: str = "") -> Any:
    """A Rich cell from user data (names, params, paths): never parsed as markup."""
    from rich.text import Text

    return Text(str(value), style=style)


def esc(value: Any) -> str:
    """User data inside a markup string: ``[`` can no longer start a tag."""
    from rich.markup import escape

    return escape(str(value))


STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "crashed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "skipped": "dim",
    "pending": "dim",
    "cached": "blue",
}


def client() -> Any:
    from loopml.tracking.client import Client

    return Client().open()
