"""``loopml runs``: list/filter/sort runs; show, compare, tag, rename and delete them."""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from typing import Any

import click

from loopml.cli.output import (
    CELL_LIMIT,
    STATUS_STYLE,
    client,
    clip,
    console,
    esc,
    fit_table,
    fmt_bytes,
    fmt_cost,
    fmt_duration,
    fmt_num,
    fmt_time,
    json_option,
    omitted_note,
    print_json,
    text,
)

SHOWN_VALUES = 100  # params/metrics/tags listed by `runs show` (all of them with --json)
SPARKLINES = 20


def _run_dict(record: Any) -> dict[str, Any]:
    # Shallow: asdict() deep-copies every value, seconds for a run with 1,000,000 metrics.
    data = {f.name: getattr(record, f.name) for f in fields(record)}
    data["run"] = record.label
    data["status"] = str(record.status)
    return data


def _reader() -> Any:
    """A read-only client; in a project that has not run anything yet, None."""
    from loopml.errors import StoreNotFoundError

    try:
        return client()
    except StoreNotFoundError:
        from loopml.config import load_settings

        # An empty project has no runs yet; a store named in LOOPML_STORE_URI that does not
        # exist is a mistake (a typo) the user must see, not an empty list.
        if load_settings().has_config and not os.environ.get("LOOPML_STORE_URI"):
            return None
        raise


@click.group(invoke_without_command=True)
@click.option(
    "-f",
    "--filter",
    "filter_",
    default=None,
    metavar="EXPR",
    help='e.g. "metrics.rmse < 3 and params.alpha >= 0.1".',
)
@click.option(
    "-s", "--sort", default=None, metavar="KEYS", help="e.g. -metrics.rmse (descending), started."
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="How many runs to show.",
)
@click.option(
    "-c",
    "--columns",
    default=None,
    metavar="COLS",
    help="Comma-separated columns to show, e.g. params.alpha,metrics.rmse (default: all that fit).",
)
@json_option
@click.pass_context
def runs(
    ctx: click.Context,
    filter_: str | None,
    sort: str | None,
    limit: int,
    columns: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first; filter and sort by metrics, params, tags and attributes.

    \b
    Filter fields: metrics.NAME, params.NAME, tags.NAME, status, pipeline, name,
    id, number, started, ended, duration, cost, executor, host, git_commit.
    Operators: = != < <= > >= ~ (glob), in (...), and, or, not, parentheses.

    Columns that do not fit the terminal are named below the table (never dropped
    silently); pick them with --columns.

    \b
    Examples:
      loopml runs --filter "metrics.rmse < 60 and params.alpha >= 0.1" --sort metrics.rmse
      loopml runs --filter "status = 'failed'" --json
      loopml runs --columns params.alpha,metrics.rmse
    """
    if ctx.invoked_subcommand is not None:
        return
    c = _reader()
    records = c.search_runs(filter_, sort, limit=limit) if c is not None else []
    if as_json:
        print_json([_run_dict(r) for r in records])
        return
    out = console()
    if not records:
        out.print(
            "No runs match." if filter_ else "No runs yet: start one with `loopml run PIPELINE`."
        )
        return
    currency = c.settings.prices.currency
    # Plain metrics first, then namespaced ones such as a suite's ("diabetes.rmse").
    metric_keys = sorted({k for r in records for k in r.metrics}, key=lambda k: ("." in k, k))
    param_keys = sorted({k for r in records for k in r.params})
    available: dict[str, tuple[list[Any], str]] = {
        "run": ([text(clip(r.label, CELL_LIMIT)) for r in records], "left"),
        "id": ([r.short_id for r in records], "left"),
        "status": ([text(r.status, STATUS_STYLE.get(r.status, "")) for r in records], "left"),
        "started": ([fmt_time(r.started_at) for r in records], "left"),
        "duration": ([fmt_duration(r.duration_s) for r in records], "right"),
        "cost": ([fmt_cost(r.cost, currency) for r in records], "right"),
    }
    for k in param_keys:
        available[f"params.{k}"] = (
            [text(clip(r.params.get(k, ""), CELL_LIMIT)) for r in records],
            "left",
        )
    for k in metric_keys:
        available[f"metrics.{k}"] = (
            [fmt_num(r.metrics[k]) if k in r.metrics else "" for r in records],
            "right",
        )
    if columns:
        wanted = [col.strip() for col in columns.split(",") if col.strip()]
        unknown = [col for col in wanted if col not in available]
        if unknown:
            from loopml.errors import InvalidParameterError, did_you_mean

            raise InvalidParameterError(
                f"--columns: no column {unknown[0]!r} in these runs; available: "
                f"{', '.join(available)}.{did_you_mean(unknown[0], available)}"
            )
        order = wanted
    else:
        order = [name for name in available if not _interval_bound(name, available)]
    table, omitted = fit_table([(name, *available[name]) for name in order])
    out.print(table)
    if omitted:
        out.print(omitted_note(omitted), style="dim")


@runs.command()
@click.argument("run_ref", metavar="RUN")
@json_option
def show(run_ref: str, as_json: bool) -> None:
    """Show RUN (id, id prefix or PIPELINE#N): params, metrics, steps with why each ran,
    artifacts, code, environment and cost.

    Long values are clipped and long lists shortened; --json prints everything.
    """
    c = client()
    record = c.run_record(run_ref)
    steps = c.steps(record.id)
    links = c.links(run=record.id)
    read = c.datasets_read(record.id)
    judged = c.run_evaluations(record.id)
    step_names = {s.id: s.name for s in steps}
    if as_json:
        data = _run_dict(record)
        data["steps"] = [{**asdict(s), "why": s.why, "status": str(s.status)} for s in steps]
        data["artifacts"] = [asdict(link) for link in links]
        data["datasets"] = [
            {"dataset": v.label, "digest": v.digest, "step": step_names.get(sid or "")}
            for v, sid in read
        ]
        data["evaluations"] = [
            {"id": e.id, "suite": e.suite, "model": e.model_label, "metrics": e.metrics}
            for e in judged
        ]
        print_json(data)
        return
    from rich.table import Table

    out = console()
    style = STATUS_STYLE.get(record.status, "")
    out.print(f"[bold]Run {esc(record.label)}[/]  {record.id}  [{style}]{record.status}[/]")
    if record.name != record.label:
        out.print(f"  [dim]{'name':>9}[/]  {esc(clip(record.name))}")
    env = record.environment
    rows = [
        ("started", fmt_time(record.started_at)),
        ("ended", fmt_time(record.ended_at)),
        ("duration", fmt_duration(record.duration_s)),
        ("host", record.host),
        ("executor", record.executor),
        ("git", f"{record.git_commit or '–'}{' (dirty)' if record.git_dirty else ''}"),
        ("python", record.python_version or "–"),
        ("packages", str(len(env.get("packages", {})))),
        ("cpu time", fmt_duration(record.cpu_s)),
        ("cost", fmt_cost(record.cost, c.settings.prices.currency)),
    ]
    if record.git_diff_digest:
        rows.append(("git diff", f"artifact {record.git_diff_digest[:12]}"))
    if record.error:
        rows.append(("error", clip(record.error, 300)))
    for key, value in rows:
        out.print(f"  [dim]{key:>9}[/]  {esc(value)}")
    for title, values in (
        ("params", record.params),
        ("metrics", record.metrics),
        ("tags", record.tags),
    ):
        if values:
            items = sorted(values.items())
            shown = "  ".join(
                f"{esc(clip(k, 60))}={esc(clip(fmt_num(v)))}" for k, v in items[:SHOWN_VALUES]
            )
            more = (
                f"  [dim]… and {len(items) - SHOWN_VALUES:,} more (--json)[/]"
                if len(items) > SHOWN_VALUES
                else ""
            )
            out.print(f"[bold]{title}[/]  {shown}{more}")
    from loopml.tracking.charts import sparkline

    keys = sorted(record.metrics)[: SPARKLINES * 5]
    series = c.metric_histories(record.id, keys, min_points=2)
    for key in [k for k in keys if k in series][:SPARKLINES]:
        values_ = [p.value for p in series[key]]
        out.print(
            f"  [dim]{esc(clip(key, 40)):>12}[/] {sparkline(values_)}  {fmt_num(values_[0])} → "
            f"{fmt_num(values_[-1])} ({len(values_)} points)"
        )
    table = Table(title="steps", box=None, header_style="bold", title_justify="left")
    remote = record.executor != "local"  # a cluster: which node and worker ran each step
    columns = ["step", "status", "wall", "cpu", "peak mem*", "why", "error"]
    for col in columns[:5] + (["ran on"] if remote else []) + columns[5:]:
        table.add_column(col)
    for s in steps:
        tries = f" ({s.attempts} attempts)" if (s.attempts or 1) > 1 else ""
        cells = [
            text(s.name),
            text(
                f"{s.status}{' (cached)' if s.cached else ''}{tries}",
                STATUS_STYLE.get(s.status, ""),
            ),
            fmt_duration(s.wall_s),
            fmt_duration(s.cpu_s),
            fmt_bytes(s.peak_mem_bytes),
        ]
        if remote:
            cells.append(text(s.host or "–"))
        table.add_row(*cells, text(s.why), text((s.error or "")[:80]))
    out.print(table)
    out.print(
        "  [dim]* peak mem is the peak of the process that ran the step, measured there: "
        "steps that overlap in one process share it.[/]"
    )
    if read:
        out.print("[bold]datasets read[/]")
        for version, sid in read[:SHOWN_VALUES]:
            by = f"step {step_names[sid]}" if sid in step_names else "the run"
            out.print(f"  {esc(version.label):<24} {version.digest[:12]}  (by {esc(by)})")
    if judged:
        out.print("[bold]evaluations[/]")
        for e in judged[:SHOWN_VALUES]:
            name, (value, low, high) = next(iter(e.metrics.items()), ("", (0.0, 0.0, 0.0)))
            figure = f"{name}={fmt_num(value)}" + (
                "" if low != low else f" [{fmt_num(low)}, {fmt_num(high)}]"
            )
            out.print(
                f"  #{e.id:<5} {esc(e.suite):<18} {esc(clip(e.model_label, 40))}  {esc(figure)}"
            )
    outputs = [link for link in links if link.direction in ("output", "logged")]
    if outputs:
        out.print("[bold]artifacts[/]")
        for link in outputs[:SHOWN_VALUES]:
            out.print(f"  {esc(clip(link.name, 60)):<24} {link.digest[:12]}  ({link.direction})")
        if len(outputs) > SHOWN_VALUES:
            out.print(f"  [dim]… and {len(outputs) - SHOWN_VALUES:,} more (--json)[/]")
    for s in (s for s in steps if s.traceback):
        out.print(f"[red]traceback of step {esc(s.name)}[/]")
        out.print(clip(s.traceback, 20_000), markup=False, highlight=False)


@runs.command()
@click.argument("run_refs", nargs=-1, required=True, metavar="RUN RUN...")
@click.option("--all", "show_all", is_flag=True, help="Also show rows that are equal in every run.")
@json_option
def compare(run_refs: tuple[str, ...], show_all: bool, as_json: bool) -> None:
    """Compare runs side by side; rows that differ are highlighted."""
    if len(run_refs) < 2:
        raise click.UsageError(
            "Give at least two runs to compare, e.g. `loopml runs compare train#1 train#2`."
        )
    from loopml.tracking.compare import comparison_rows, differs, outputs_verdict

    c = client()
    records = [c.run_record(ref) for ref in run_refs]
    rows = comparison_rows(records, duration=fmt_duration, client=c)
    verdict = outputs_verdict(rows)
    outputs = [values for name, values in rows if name.startswith("outputs.")]
    identical = None if not outputs else not any(differs(values) for values in outputs)
    if as_json:
        print_json(
            {
                "runs": [r.label for r in records],
                "rows": {name: values for name, values in rows},
                "different": [name for name, values in rows if differs(values)],
                "outputs_identical": identical,
            }
        )
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    table.add_column("")
    for r in records:
        table.add_column(text(f"{r.label} ({r.short_id})"))
    for name, values in rows:
        changed = differs(values)
        if not changed and not show_all:
            continue
        cells = ["–" if v is None else clip(fmt_num(v), CELL_LIMIT) for v in values]
        style = "bold yellow" if changed else ""
        table.add_row(text(name, style), *(text(c, "yellow" if changed else "") for c in cells))
    console().print(table)
    if verdict is not None:
        click.secho(verdict, fg="green" if identical else "yellow")


@runs.command()
@click.argument("run_refs", nargs=-1, metavar="RUN...")
@click.option(
    "-f",
    "--filter",
    "filter_",
    default=None,
    metavar="EXPR",
    help="Delete the runs matching a filter.",
)
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def delete(
    run_refs: tuple[str, ...], filter_: str | None, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """Delete runs for good: their params, metrics, steps, lineage and cache entries.

    Blobs only those runs used stay until `loopml gc` frees them. Running runs are
    never deleted.

    \b
    Examples:
      loopml runs delete train#3 train#4
      loopml runs delete --filter "status = 'failed'" --dry-run
    """
    c = client(readonly=False)
    records, _ = c.delete_runs(run_refs, filter=filter_, dry_run=True)
    if not records:
        click.echo("No runs match; nothing deleted.")
        return
    listed = [f"{r.label} ({r.short_id}, {r.status})" for r in records]
    if dry_run:
        if as_json:
            print_json({"dry_run": True, "runs": [r.id for r in records]})
        else:
            click.echo(f"Would delete {len(records)} run{'s' if len(records) != 1 else ''}:")
            for line in listed:
                click.echo(f"  {line}")
        return
    if not yes and not as_json:
        click.echo("\n".join(f"  {line}" for line in listed[:20]))
        if len(listed) > 20:
            click.echo(f"  … and {len(listed) - 20} more")
        click.confirm(f"Delete these {len(records)} runs for good?", abort=True)
    _, counts = c.delete_runs([r.id for r in records])
    if as_json:
        print_json({"dry_run": False, "runs": [r.id for r in records], **counts})
        return
    click.echo(
        f"Deleted {counts['runs']} run{'s' if counts['runs'] != 1 else ''} and "
        f"{counts['cache_entries']} cache entr{'y' if counts['cache_entries'] == 1 else 'ies'}. "
        "Free their blobs with `loopml gc`."
    )


@runs.command()
@click.argument("run_ref", metavar="RUN")
@click.argument("assignments", nargs=-1, metavar="KEY=VALUE...")
@click.option(
    "--remove", "remove", multiple=True, metavar="KEY", help="Remove this tag (repeatable)."
)
def tag(run_ref: str, assignments: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Set tags on RUN (KEY=VALUE) or remove them (--remove KEY); works on finished runs too.

    \b
    Example:
      loopml runs tag train#3 reviewed=yes --remove draft
    """
    from loopml.errors import InvalidParameterError

    if not assignments and not remove:
        raise InvalidParameterError(
            "runs tag: give KEY=VALUE to set a tag or --remove KEY to remove one."
        )
    tags: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidParameterError(
                f"Tag {item!r}: expected KEY=VALUE to set a tag (or --remove KEY to remove one)."
            )
        if key in tags:
            raise InvalidParameterError(f"Tag {key!r} is given twice; give it once.")
        tags[key] = value
    c = client(readonly=False)
    c.tag_run(run_ref, tags, remove=list(remove))
    click.echo(f"Tagged {c.run_record(run_ref).label}.")


@runs.command()
@click.argument("run_ref", metavar="RUN")
@click.argument("name")
def rename(run_ref: str, name: str) -> None:
    """Give RUN a display name (its PIPELINE#N reference stays).

    \b
    Example:
      loopml runs rename train#3 "baseline, before feature work"
    """
    c = client(readonly=False)
    c.rename_run(run_ref, name)
    click.echo(f"Renamed {c.run_record(run_ref).label} to {name!r}.")


def _interval_bound(column: str, available: dict[str, Any]) -> bool:
    """``metrics.X.low``/``.high`` next to ``metrics.X`` (a suite's interval): shown by
    ``runs show`` and ``--columns``, not in the default list."""
    base, dot, end = column.rpartition(".")
    return (
        column.startswith("metrics.")
        and bool(dot)
        and end in ("low", "high")
        and (base in available)
    )
