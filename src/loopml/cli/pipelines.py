"""``loopml pipelines``: the project's pipelines, with their parameters and defaults."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import click

from loopml.cli.output import console, esc, json_option, print_json
from loopml.pipelines.discovery import describe

if TYPE_CHECKING:
    from loopml.config import Settings


def show_pipelines(settings: Settings, *, as_json: bool, hint: bool = False) -> None:
    from loopml.pipelines.discovery import load_pipelines

    pipelines = load_pipelines(settings)
    if as_json:
        print_json({name: describe(p) for name, p in sorted(pipelines.items())})
        return
    out = console()
    if not pipelines:
        modules = ", ".join(settings.pipelines)
        out.print(f"No pipelines found in {esc(modules)}: decorate a function with @pipeline.")
        return
    for name, p in sorted(pipelines.items()):
        params = "  ".join(
            f"{esc(d['name'])}{': ' + esc(d['type']) if d['type'] else ''}"
            + (" [red](required)[/]" if d["required"] else f" = {esc(repr(d['default']))}")
            for d in describe(p)
        )
        doc = (inspect.getdoc(p.fn) or "").splitlines()
        out.print(f"[bold]{esc(name)}[/]  {params}")
        if doc:
            out.print(f"    [dim]{esc(doc[0])}[/]")
    if hint:
        first = sorted(pipelines)[0]
        out.print(f"\nRun one with: loopml run {esc(first)} [-p KEY=VALUE …]")


@click.command()
@json_option
def pipelines(as_json: bool) -> None:
    """List the pipelines of this project with their parameters and defaults.

    \b
    Example:
      loopml pipelines
    """
    from loopml.config import load_settings

    show_pipelines(load_settings(), as_json=as_json)
