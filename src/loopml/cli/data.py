"""``loopml data``: versioned datasets, their profiles, validation and drift.

Every subcommand is a thin shell over ``loopml.data`` (the same functions Python users call).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from loopml.cli.output import (
    client,
    console,
    esc,
    fmt_bytes,
    fmt_time,
    json_option,
    print_json,
    with_progress,
)


@click.group()
def data() -> None:
    """Version files, folders and tables; profile, validate and compare them.

    \b
    Examples:
      loopml data add data/turbines.csv --name turbines
      loopml data versions turbines
      loopml data show turbines@latest --html turbines.html
      loopml data diff turbines@1 turbines@2
      loopml data infer-schema turbines@2 -o turbines.schema.toml
      loopml data validate new_batch.csv --schema turbines.schema.toml
    """


def _version_json(v: Any) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": v.number,
        "ref": v.label,
        "digest": v.digest,
        "kind": v.kind,
        "filename": v.filename,
        "format": v.format,
        "size": v.size,
        "rows": v.rows,
        "columns": v.columns,
        "profile_digest": v.profile_digest,
        "source": v.source,
        "created_at": v.created_at,
    }


@data.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="The dataset's name (letters, digits, . _ -).")
@click.option("--no-profile", is_flag=True, help="Do not profile a table (faster for huge files).")
@json_option
def add(path: Path, name: str, no_profile: bool, as_json: bool) -> None:
    """Add a file or folder as the next version of a dataset.

    The same content again gives the existing version and stores nothing. Tables (CSV,
    Parquet, JSON lines) are profiled: `loopml data show` prints the profile.

    \b
    Examples:
      loopml data add data/turbines.csv --name turbines
      loopml data add images/ --name photos
    """
    from loopml.data.datasets import add_dataset

    c = client(readonly=False)
    version, created = with_progress(
        f"adding {path.name}",
        lambda progress: add_dataset(
            path, name=name, client=c, profile=not no_profile, on_progress=progress
        ),
        show=not as_json,
    )
    if as_json:
        print_json({**_version_json(version), "created": created})
        return
    what = "Added" if created else "Unchanged: already"
    rows = (
        f", {version.rows:,} rows × {version.columns} columns" if version.rows is not None else ""
    )
    console().print(
        f"{what} {esc(version.label)} ({version.digest[:12]}, {fmt_bytes(version.size)}{rows})"
    )


@data.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List datasets with their newest version."""
    versions = client().datasets()
    if as_json:
        print_json([_version_json(v) for v in versions])
        return
    if not versions:
        console().print("No datasets yet. Add one with `loopml data add PATH --name NAME`.")
        return
    _table(versions, readers=None, checks=None)


@data.command("versions")
@click.argument("name")
@json_option
def versions(name: str, as_json: bool) -> None:
    """List every version of a dataset, with the runs that read it.

    \b
    Example:
      loopml data versions turbines
    """
    c = client()
    found = c.dataset_versions(name)
    if not found:
        c.dataset_version(name)  # raises the "no dataset named …" message
    readers = c.dataset_readers(found)
    checks = c.dataset_validations(found)
    if as_json:
        print_json(
            [
                {
                    **_version_json(v),
                    "runs": readers[v.digest],
                    "validations": [asdict(check) for check in checks[v.label]],
                }
                for v in found
            ]
        )
        return
    _table(found, readers=readers, checks=checks)


def _validated(checks: list[Any]) -> str:
    """The latest validation of a version, as a table cell."""
    if not checks:
        return ""
    last = checks[-1]
    if last.ok:
        return "ok" + (f" ({last.warnings} warnings)" if last.warnings else "")
    return f"{last.errors} error{'s' if last.errors != 1 else ''}"


def _table(
    found: list[Any],
    readers: dict[str, list[str]] | None,
    checks: dict[str, list[Any]] | None,
) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("version", "added", "digest", "format", "size", "rows", "cols"):
        table.add_column(column, justify="right" if column in ("size", "rows", "cols") else "left")
    if checks is not None:
        table.add_column("validated")
    if readers is not None:
        table.add_column("read by runs")
    for v in found:
        cells = [
            esc(v.label),
            fmt_time(v.created_at),
            v.digest[:12],
            v.format if v.kind == "file" else "folder",
            fmt_bytes(v.size),
            "" if v.rows is None else f"{v.rows:,}",
            "" if v.columns is None else str(v.columns),
        ]
        if checks is not None:
            cells.append(_validated(checks.get(v.label, [])))
        if readers is not None:
            runs = readers.get(v.digest, [])
            cells.append(
                ", ".join(r[:8] for r in runs[:3]) + (f" +{len(runs) - 3}" if len(runs) > 3 else "")
            )
        table.add_row(*cells)
    console().print(table)


@data.command("get")
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to write it (default: its file name here).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file or folder.")
def get(ref: str, output: Path | None, force: bool) -> None:
    """Write a version's file or folder (verified first).

    \b
    Example:
      loopml data get turbines@2 -o old.csv
    """
    c = client()
    version = c.dataset_version(ref)
    written = c.export_artifact(version.digest, output or Path(version.filename), force=force)
    console().print(f"Wrote {esc(version.label)} to {esc(written)}")


@data.command("rm")
@click.argument("ref")
def rm(ref: str) -> None:
    """Remove one version no run reads; `loopml gc` then frees its blobs.

    \b
    Example:
      loopml data rm turbines@1
    """
    version = client(readonly=False).remove_dataset_version(ref)
    console().print(f"Removed {esc(version.label)}. Run `loopml gc` to free its space.")


def _table_of(ref_or_path: str, c: Any) -> Any:
    """A dataset reference (``name@…``) or a file path -> what the data functions accept."""
    path = Path(ref_or_path)
    if path.exists():
        return path
    from loopml.data.datasets import Dataset

    return Dataset(ref_or_path).path(c)


@data.command("show")
@click.argument("ref")
@click.option(
    "--html",
    "html",
    type=click.Path(path_type=Path),
    help="Also write the profile as an HTML page with charts.",
)
@json_option
def show(ref: str, html: Path | None, as_json: bool) -> None:
    """Print a table's schema and statistics (its stored profile).

    \b
    Examples:
      loopml data show turbines@latest
      loopml data show turbines@3 --html turbines.html
    """
    from loopml.data.datasets import stored_profile

    prof = stored_profile(ref, client())
    if html is not None:
        prof.to_html(html)
    if as_json:
        print_json(prof.to_dict())
        return
    console().print(prof)
    if html is not None:
        console().print(f"Wrote {esc(html)}")


@data.command("diff")
@click.argument("reference")
@click.argument("current")
@click.option(
    "--html",
    "html",
    type=click.Path(path_type=Path),
    help="Also write the report as an HTML page with charts.",
)
@json_option
def diff(reference: str, current: str, html: Path | None, as_json: bool) -> None:
    """Compare two versions (or files): schema changes and per-column drift, worst first.

    \b
    Example:
      loopml data diff turbines@2 turbines@3
    """
    from loopml.data.drift import drift

    c = client()
    report = drift(_table_of(reference, c), _table_of(current, c))
    if html is not None:
        report.to_html(html)
    if as_json:
        print_json(report.to_dict())
        return
    console().print(report)


@data.command("infer-schema")
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="The schema file to write (TOML).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing schema file.")
def infer_schema(ref: str, output: Path, force: bool) -> None:
    """Infer expectations from a version (or file) and write them as an editable TOML file.

    \b
    Example:
      loopml data infer-schema turbines@3 -o turbines.schema.toml
    """
    from loopml.data.validate import infer_schema as infer
    from loopml.errors import ConflictError

    if output.exists() and not force:
        raise ConflictError(f"{output} exists; pass --force to overwrite it.")
    schema = infer(_table_of(ref, client()))
    schema.save(output)
    console().print(
        f"Wrote {esc(output)}: edit it, then `loopml data validate FILE --schema {esc(output)}`"
    )


@data.command("validate")
@click.argument("ref")
@click.option(
    "--schema",
    "schema_path",
    type=click.Path(path_type=Path),
    required=True,
    help="The schema file (TOML).",
)
@json_option
def validate(ref: str, schema_path: Path, as_json: bool) -> None:
    """Check a version or a file against a schema; exit 1 when an error-level expectation fails.

    Validating a version (NAME@N) records the result with it: `loopml data versions` shows
    it, and a registry gate can ask whether a model's training data was validated.

    \b
    Examples:
      loopml data validate turbines@3 --schema turbines.schema.toml
      loopml data validate new_batch.csv --schema turbines.schema.toml
    """
    from loopml.data.schema import Schema

    schema = Schema.load(schema_path)
    if Path(ref).exists():
        from loopml.data.validate import validate as check

        report = check(Path(ref), schema, raise_on_error=False)
    else:
        from loopml.data.datasets import validate_version

        report = validate_version(ref, schema, client=client(readonly=False), raise_on_error=False)
    if as_json:
        print_json(report.to_dict())
    else:
        console().print(report)
    if not report.ok:
        sys.exit(1)
