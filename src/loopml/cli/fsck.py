"""``loopml fsck``: check the whole store and report every problem."""

from __future__ import annotations

import sys
from dataclasses import asdict

import click

from loopml.cli.output import client, console, esc, json_option, print_json


@click.command()
@json_option
def fsck(as_json: bool) -> None:
    """Check the store: re-hash every blob, find missing, corrupt, orphan and dangling data.

    Exits 0 when the store is clean and 1 when any problem is found. Reads only:
    nothing is deleted or repaired.
    """
    from loopml.tracking.fsck import fsck as check

    c = client()
    out = console()
    if sys.stderr.isatty() and not as_json:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("verifying blobs", total=None)
            problems, verified = check(
                c, on_progress=lambda done, total: bar.update(task, completed=done, total=total)
            )
    else:
        problems, verified = check(c)
    if as_json:
        print_json({"verified": verified, "problems": [asdict(p) for p in problems]})
    else:
        for p in problems:
            out.print(
                f"[red]{p.kind:>8}[/] {p.digest or '-'}  {esc(p.path)}  {esc(p.detail)}",
                markup=True,
                highlight=False,
            )
        out.print(
            f"{verified} blobs verified, {len(problems)} problem{'s' if len(problems) != 1 else ''}."
        )
    if problems:
        sys.exit(1)
