"""``loopml models``, ``register``, ``promote``, ``rollback``: the model registry.

Thin shells over ``loopml.registry`` (the functions Python users and, later, the web UI's
promote button call).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from loopml.cli.output import client, console, esc, fmt_time, json_option, print_json


def _version_json(v: Any) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": v.number,
        "ref": v.label,
        "digest": v.digest,
        "run_id": v.run_id,
        "source": v.source,
        "library": v.library,
        "library_version": v.library_version,
        "datasets": list(v.datasets),
        "aliases": list(v.aliases),
        "metrics": v.metrics,
        "input_schema": v.input_schema,
        "output_schema": v.output_schema,
        "description": v.description,
        "tags": v.tags,
        "created_by": v.created_by,
        "created_at": v.created_at,
    }


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List registered models: newest version and who holds each alias.

    \b
    Examples:
      loopml models
      loopml models show churn
    """
    if ctx.invoked_subcommand is not None:
        return
    c = client()
    found = c.models()
    if as_json:
        print_json([{**_version_json(v), "all_aliases": c.model_aliases(v.name)} for v in found])
        return
    if not found:
        console().print(
            "No models yet. Register one with `loopml register NAME --run RUN --output OUTPUT`."
        )
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False)
    for column in ("model", "latest", "aliases", "library", "registered"):
        table.add_column(column)
    for v in found:
        aliases = c.model_aliases(v.name)
        table.add_row(
            Text(v.name),
            f"@{v.number}",
            Text(", ".join(f"{a}=@{n}" for a, n in sorted(aliases.items())) or "–"),
            Text(f"{v.library} {v.library_version}"),
            fmt_time(v.created_at),
        )
    console().print(table)


@models.command("show")
@click.argument("name")
@json_option
def show(name: str, as_json: bool) -> None:
    """Show a model's versions (source run, data, metrics, schema, aliases) and alias history."""
    c = client()
    versions = c.model_versions(name)
    if not versions:
        c.model_version(name)  # raises "No model named …"
    history = c.alias_history(name)
    if as_json:
        print_json(
            {
                "name": name,
                "versions": [_version_json(v) for v in versions],
                "aliases": c.model_aliases(name),
                "history": [e.__dict__ for e in history],
            }
        )
        return
    from rich.table import Table
    from rich.text import Text

    out = console()
    table = Table(title=Text(f"model {name}"), box=None, pad_edge=False)
    for column in ("version", "aliases", "source", "data", "metrics", "inputs", "registered"):
        table.add_column(column)
    for v in versions:
        metrics = ", ".join(f"{k}={val:.4g}" for k, val in list(v.metrics.items())[:3])
        inputs = (
            "–" if v.input_schema is None else f"{len(v.input_schema.get('inputs', []))} columns"
        )
        table.add_row(
            f"@{v.number}",
            Text(", ".join(v.aliases)),
            Text(v.source),
            Text(", ".join(v.datasets) or "–"),
            Text(metrics or "–"),
            inputs,
            fmt_time(v.created_at),
        )
    out.print(table)
    if history:
        out.print("[bold]alias history[/]")
        for e in history:
            was = "–" if e.from_number is None else f"@{e.from_number}"
            now = "removed" if e.to_number is None else f"@{e.to_number}"
            forced = " [red]forced[/]" if e.forced else ""
            why = f"  {esc(e.reason)}" if e.reason else ""
            out.print(
                f"  {fmt_time(e.at)}  {esc(e.alias)}: {was} → {now}  {e.action} by "
                f"{esc(e.by)}{forced}{why}"
            )


@click.command()
@click.argument("name")
@click.option("--run", "run_ref", help="The run that produced the model (with --output).")
@click.option("--output", help="The step output that is the model, e.g. 'train'.")
@click.option(
    "--file",
    "model_file",
    type=click.Path(),
    help="A model file made elsewhere: XGBoost .ubj/.json, LightGBM .txt, or a pickle.",
)
@click.option("--trust", is_flag=True, help="Read a pickle file (it runs code): only your own.")
@click.option("--description", default="", help="What this version is, for people.")
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE (repeat).")
@json_option
def register(
    name: str,
    run_ref: str | None,
    output: str | None,
    model_file: str | None,
    trust: bool,
    description: str,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register a run's step output (or a model file) as the next version of a model.

    The version records its run, the dataset versions the run read, the run's metrics, the
    library and its version, and the input schema of the training data. The same artifact
    again is the same version.

    \b
    Examples:
      loopml register churn --run train#3 --output train
      loopml register churn --file model.ubj
    """
    from loopml.registry.versions import register as do_register

    parsed = {}
    for tag in tags:
        key, eq, value = tag.partition("=")
        if not eq or not key:
            raise click.UsageError(f"--tag {tag!r}: expected KEY=VALUE.")
        parsed[key] = value
    if (model_file is None) == (run_ref is None) or (run_ref is not None and not output):
        raise click.UsageError("Give --run RUN --output OUTPUT, or --file PATH.")
    version, created = do_register(
        name,
        run=run_ref,
        output=output,
        path=model_file,
        trust=trust,
        description=description,
        tags=parsed,
        client=client(readonly=False),
    )
    if as_json:
        print_json({**_version_json(version), "created": created})
        return
    what = "Registered" if created else "Unchanged: already"
    console().print(
        f"{what} {esc(version.label)} from {esc(version.source)} ({version.digest[:12]})"
    )


@click.command()
@click.argument("name")
@click.argument("version")
@click.option("--to", "alias", required=True, help="The alias to move, e.g. production.")
@click.option(
    "--dry-run", is_flag=True, help="Only check the gates; the exit code says the verdict."
)
@click.option("--force", is_flag=True, help="Move the alias even if a gate fails (needs --reason).")
@click.option("--reason", default="", help="Why: recorded in the alias history.")
@json_option
def promote(
    name: str, version: str, alias: str, dry_run: bool, force: bool, reason: str, as_json: bool
) -> None:
    """Check the gates in loopml.toml and move an alias to a version, or refuse.

    Prints each gate with what it requires and what it observed. Exit codes: 0 moved (or,
    with --dry-run, would move), 1 refused (a gate failed) or an error.

    \b
    Examples:
      loopml promote churn 4 --to production --dry-run
      loopml promote churn 4 --to production
      loopml promote churn 4 --to production --force --reason "hotfix for the Q3 outage"
    """
    from loopml.registry.promotion import PromotionRefusedError
    from loopml.registry.promotion import promote as do_promote

    out = console()
    try:
        done = do_promote(
            name,
            version,
            to=alias,
            dry_run=dry_run,
            force=force,
            reason=reason,
            client=client(readonly=False),  # a dry run may still evaluate the suite
        )
    except PromotionRefusedError as exc:
        if as_json:
            print_json({**exc.promotion.to_dict(), "error": str(exc)})
        else:
            out.print(exc.promotion)
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(1)
    if as_json:
        print_json(done.to_dict())
    else:
        out.print(done)
        if done.dry_run:
            verdict = "would move" if done.passed else "would be refused"
            out.print(f"Dry run: {esc(name)}@{esc(alias)} {verdict}; nothing changed.")
        else:
            forced = " (forced: gates failed)" if done.forced else ""
            out.print(f"Moved {esc(name)}@{esc(alias)} to {esc(done.version.label)}{forced}.")
    if done.dry_run and not done.passed:
        sys.exit(1)


@click.command()
@click.argument("name")
@click.option("--alias", required=True, help="The alias to give back to its previous holder.")
@click.option("--reason", default="", help="Why: recorded in the alias history.")
@json_option
def rollback(name: str, alias: str, reason: str, as_json: bool) -> None:
    """Give an alias back to the version it held before its last promotion.

    \b
    Example:
      loopml rollback churn --alias production --reason "latency regression"
    """
    from loopml.registry.promotion import rollback as do_rollback

    event = do_rollback(name, alias=alias, reason=reason, client=client(readonly=False))
    if as_json:
        print_json(event.__dict__)
        return
    console().print(
        f"Rolled back {esc(name)}@{esc(alias)}: @{event.from_number} → @{event.to_number}."
    )
