"""``loopml artifacts``: list, show and export stored artifacts."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from loopml.cli.output import (
    client,
    clip,
    console,
    esc,
    fmt_bytes,
    fmt_time,
    json_option,
    print_json,
    text,
)


@click.group()
def artifacts() -> None:
    """List, inspect and export stored artifacts (content-addressed by SHA-256)."""


@artifacts.command("list")
@click.option("--run", "run_ref", default=None, help="Only artifacts linked to this run.")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(1, 10_000),
    default=50,
    show_default=True,
    help="How many artifacts to show.",
)
@json_option
def list_(run_ref: str | None, limit: int, as_json: bool) -> None:
    """List artifacts, newest first."""
    c = client()
    records = c.list_artifacts(limit=limit, run=run_ref)
    if as_json:
        print_json([asdict(r) for r in records])
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("digest", "type", "materializer", "size", "created"):
        table.add_column(col)
    for r in records:
        table.add_row(
            r.digest[:12],
            text(r.type_name),
            text(r.materializer),
            fmt_bytes(r.size),
            fmt_time(r.created_at),
        )
    console().print(table)


@artifacts.command()
@click.argument("digest")
@json_option
def show(digest: str, as_json: bool) -> None:
    """Show one artifact's type, size and metadata (schema, rows, shape…)."""
    record = client().artifact(digest)
    if as_json:
        print_json(asdict(record))
        return
    out = console()
    out.print(
        f"[bold]{record.digest}[/]\n  type {esc(record.type_name)}\n  materializer {esc(record.materializer)}\n  size {fmt_bytes(record.size)}\n  created {fmt_time(record.created_at)}"
    )
    for key, value in sorted(record.metadata.items()):
        out.print(f"  {key}: {clip(value)}", markup=False)


@artifacts.command()
@click.argument("digest")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Destination file or folder (default: DIGEST + extension).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file or non-empty folder.")
def get(digest: str, output: Path | None, force: bool) -> None:
    """Export artifact DIGEST (or a unique prefix) to a file: Parquet for DataFrames, .npy for arrays…

    The blob is verified against its digest before it is written, and the result appears
    under its name only once complete. An existing file is never overwritten without
    --force.
    """
    c = client()
    record = c.artifact(digest)
    try:  # the project's modules may register its own materializers
        from loopml.pipelines.discovery import load_pipelines

        load_pipelines(c.settings)
    except Exception:
        pass
    dest = c.export_artifact(record.digest, output, force=force)
    click.echo(f"Wrote {dest} ({fmt_bytes(record.size)}, {record.type_name})")
