"""Shared CLI options and output: ``--json`` everywhere, Rich tables on a terminal.

Tables never drop a column silently: columns that do not fit the width (``COLUMNS``, the
terminal, or 200 when piped) are left out *visibly*, with a line naming them and how to
see them (``--columns``, ``--json``). Long user values are clipped for display with their
full length shown; ``--json`` always prints them whole.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from loopml.store.status import StepStatus

F = TypeVar("F", bound=Callable[..., Any])
PIPED_WIDTH = 200
CELL_LIMIT = 40


def json_option(fn: F) -> F:
    """``--json``: print machine-readable JSON instead of a table (same on every command)."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table."
    )(fn)


def on_option(fn: F) -> F:
    """``--on``: where the steps run (``loopml run``, ``loopml sweep``)."""
    return click.option(
        "--on",
        "on",
        default=None,
        metavar="TARGET",
        help="Where steps run: local, ray (RAY_ADDRESS or [ray] address), ray://HOST:PORT "
        "(Ray Client) or ray:HOST:PORT (default: [run] executor).",
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
    text = json.dumps(_clean(data), indent=2, sort_keys=True, default=str, ensure_ascii=False)
    click.echo(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def width() -> int:
    """Output width: ``COLUMNS`` if set, else the terminal's, else 200 when piped."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((100, 24)).columns
    return PIPED_WIDTH


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=width())


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


def fmt_cost(cost: float | None, currency: str = "USD") -> str:
    from loopml.tracking.cost import format_cost

    return format_cost(cost, currency)


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def clip(value: Any, limit: int = 200) -> str:
    """A user value for display: at most ``limit`` characters, saying how long it really is."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters; see --json)"


def text(value: Any, style: str = "") -> Any:
    """A Rich cell from user data (names, params, paths): never parsed as markup."""
    from rich.text import Text

    return Text(str(value), style=style)


def esc(value: Any) -> str:
    """User data inside a markup string: ``[`` can no longer start a tag."""
    from rich.markup import escape

    return escape(str(value))


STATUS_STYLE = {
    StepStatus.SUCCEEDED: "green",
    StepStatus.FAILED: "red",
    StepStatus.CRASHED: "red",
    StepStatus.CANCELLED: "yellow",
    StepStatus.RUNNING: "cyan",
    StepStatus.SKIPPED: "dim",
    StepStatus.PENDING: "dim",
    "cached": "blue",  # a step taken from the cache (succeeded, not run)
}


def fit_table(
    columns: Sequence[tuple[str, list[Any], str]], *, total: int | None = None
) -> tuple[Any, list[str]]:
    """A Rich table of as many columns as fit the output width, and the names left out.

    Args:
        columns: (header, cells, justify) in priority order; cells are str or Rich Text.
        total: the width to fit (default: :func:`width`).
    """
    from rich.table import Table

    room = total or width()
    table = Table(box=None, header_style="bold", pad_edge=False)
    shown: list[tuple[str, list[Any], str]] = []
    used = 0
    omitted: list[str] = []
    for header, cells, justify in columns:
        need = max([len(header), *(len(str(c)) for c in cells)]) + 2
        if used + need > room and shown:
            omitted.append(header)
            continue
        shown.append((header, cells, justify))
        used += need
    for header, _, justify in shown:
        table.add_column(text(header), justify=justify, no_wrap=True)  # type: ignore[arg-type]
    rows = len(shown[0][1]) if shown else 0
    for i in range(rows):
        table.add_row(*(c[1][i] for c in shown))
    return table, omitted


def omitted_note(omitted: Sequence[str]) -> str:
    names = ", ".join(omitted[:8]) + (f", … ({len(omitted)} in all)" if len(omitted) > 8 else "")
    return (
        f"{len(omitted)} more column{'s' if len(omitted) != 1 else ''} did not fit: {names}. "
        "Choose columns with --columns, widen the terminal (COLUMNS=…), or use --json."
    )


T = TypeVar("T")


def with_progress(
    label: str, work: Callable[[Callable[[int, int], None] | None], T], *, show: bool
) -> T:
    """Run ``work(on_progress)`` under a progress bar on a terminal (stderr), silently otherwise."""
    if not (show and sys.stderr.isatty()):
        return work(None)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=None)
        return work(lambda done, total: bar.update(task, completed=done, total=total))


def client(*, readonly: bool = True) -> Any:
    """The project's client; read-only unless the command writes."""
    from loopml.tracking.client import Client

    return Client(readonly=readonly).open()
