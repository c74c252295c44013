"""``loopml fsck``: check the whole store, report every problem, and repair what can be."""

from __future__ import annotations

import sys
from dataclasses import asdict

import click

from loopml.cli.output import console, esc, fmt_bytes, json_option, print_json, with_progress


@click.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Fix what can be fixed (remove damaged blobs, re-upload from verified copies, drop "
    "cache entries that hand out damaged blobs, clear dead writers' temp files).",
)
@json_option
def fsck(repair: bool, as_json: bool) -> None:
    """Check the store: re-hash every blob, find missing, corrupt, orphan and dangling data.

    Exits 0 when the store is clean and 1 when any problem remains. Without --repair it
    only reads. With --repair each problem says what was done, or why it could not be.

    \b
    Examples:
      loopml fsck
      loopml fsck --repair
    """
    from loopml.tracking.client import Client

    c = Client(readonly=not repair)
    out = console()
    report = with_progress(
        "verifying blobs",
        lambda progress: c.fsck(repair=repair, on_progress=progress),
        show=not as_json,
    )
    remaining = report.unrepaired if repair else report.problems
    if as_json:
        print_json(
            {
                "verified": report.verified,
                "bytes_verified": report.bytes_verified,
                "repaired": report.repaired,
                "problems": [asdict(p) for p in report.problems],
            }
        )
    else:
        for p in report.problems:
            out.print(
                f"[red]{p.kind:>8}[/] {p.digest or '-'}  {esc(p.path)}  {esc(p.detail)}",
                highlight=False,
            )
            if p.repair:
                out.print(f"          [dim]→ {esc(p.repair)}[/]", highlight=False)
        n = len(report.problems)
        summary = (
            f"{report.verified} blob{'' if report.verified == 1 else 's'} verified ({fmt_bytes(report.bytes_verified)}), "
            f"{n} problem{'s' if n != 1 else ''}"
        )
        if repair:
            summary += f", {report.repaired} repaired"
        out.print(summary + ".")
    if remaining:
        sys.exit(1)
