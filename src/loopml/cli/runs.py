"""``loopml runs``: list/filter/sort runs, ``runs show``, ``runs compare``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from loopml.cli.output import (
    STATUS_STYLE,
    client,
    console,
    esc,
    fmt_bytes,
    fmt_cost,
    fmt_duration,
    fmt_num,
    fmt_time,
    json_option,
    print_json,
    text,
)


def _run_dict(record: Any) -> dict[str, Any]:
    data = asdict(record)
    data["run"] = record.label
    return data


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
@json_option
@click.pass_context
def runs(
    ctx: click.Context, filter_: str | None, sort: str | None, limit: int, as_json: bool
) -> None:
    """List runs, newest first; filter and sort by metrics, params, tags and attributes.

    \b
    Filter fields: metrics.NAME, params.NAME, tags.NAME, status, pipeline, name,
    id, number, started, ended, duration, cost, executor, host, git_commit.
    Operators: = != < <= > >= ~ (glob), in (...), and, or, not, parentheses.

    \b
    Examples:
      loopml runs --filter "metrics.rmse < 60 and params.alpha >= 0.1" --sort metrics.rmse
      loopml runs --filter "status = 'failed'" --json
    """
    if ctx.invoked_subcommand is not None:
        return
    records = client().search_runs(filter_, sort, limit=limit)
    if as_json:
        print_json([_run_dict(r) for r in records])
        return
    from rich.table import Table

    metric_keys = sorted({k for r in records for k in r.metrics})[:6]
    param_keys = sorted({k for r in records for k in r.params})[:4]
    table = Table(box=None, header_style="bold")
    for col in (
        "run",
        "id",
        "status",
        "started",
        "duration",
        "cost",
        *(f"params.{k}" for k in param_keys),
        *metric_keys,
    ):
        table.add_column(text(col), justify="right" if col in metric_keys else "left")
    for r in records:
        style = STATUS_STYLE.get(r.status, "")
        table.add_row(
            text(r.label),
            r.short_id,
            text(r.status, style),
            fmt_time(r.started_at),
            fmt_duration(r.duration_s),
            fmt_cost(r.cost),
            *(text(r.params.get(k, "")) for k in param_keys),
            *(fmt_num(r.metrics[k]) if k in r.metrics else "" for k in metric_keys),
        )
    out = console()
    if not records:
        out.print(
            "No runs match." if filter_ else "No runs yet: start one with `loopml run PIPELINE`."
        )
        return
    out.print(table)


@runs.command()
@click.argument("run_ref", metavar="RUN")
@json_option
def show(run_ref: str, as_json: bool) -> None:
    """Show RUN (id, id prefix or PIPELINE#N): params, metrics, steps, artifacts, code, cost."""
    c = client()
    run = c.get_run(run_ref)
    record = run.record
    steps = run.steps
    links = c.metadata.lineage.links(run_id=record.id)
    if as_json:
        data = _run_dict(record)
        data["steps"] = [asdict(s) for s in steps]
        data["artifacts"] = [asdict(link) for link in links]
        print_json(data)
        return
    from rich.table import Table

    out = console()
    style = STATUS_STYLE.get(record.status, "")
    out.print(f"[bold]Run {esc(record.label)}[/]  {record.id}  [{style}]{record.status}[/]")
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
        ("cost", fmt_cost(record.cost)),
    ]
    if record.git_diff_digest:
        rows.append(("git diff", f"artifact {record.git_diff_digest[:12]}"))
    if record.error:
        rows.append(("error", record.error.splitlines()[-1] if record.error else ""))
    for key, value in rows:
        out.print(f"  [dim]{key:>9}[/]  {esc(value)}")
    for title, values in (
        ("params", record.params),
        ("metrics", record.metrics),
        ("tags", record.tags),
    ):
        if values:
            out.print(
                f"[bold]{title}[/]  "
                + "  ".join(f"{esc(k)}={esc(fmt_num(v))}" for k, v in sorted(values.items()))
            )
    from loopml.tracking.charts import sparkline

    for key in sorted(record.metrics):
        series = c.metadata.metrics.history(record.id, key)
        if len(series) > 1:
            values = [p.value for p in series]
            out.print(
                f"  [dim]{esc(key):>12}[/] {sparkline(values)}  {fmt_num(values[0])} → {fmt_num(values[-1])} ({len(values)} points)"
            )
    table = Table(title="steps", box=None, header_style="bold", title_justify="left")
    for col in ("step", "status", "cached", "wall", "cpu", "peak mem", "error"):
        table.add_column(col)
    for s in steps:
        table.add_row(
            text(s.name),
            text(s.status, STATUS_STYLE.get(s.status, "")),
            "yes" if s.cached else "",
            fmt_duration(s.wall_s),
            fmt_duration(s.cpu_s),
            fmt_bytes(s.peak_mem_bytes),
            text((s.error or "")[:80]),
        )
    out.print(table)
    outputs = [link for link in links if link.direction in ("output", "logged")]
    if outputs:
        out.print("[bold]artifacts[/]")
        for link in outputs:
            out.print(f"  {esc(link.name):<24} {link.digest[:12]}  ({link.direction})")
    failed = [s for s in steps if s.traceback]
    for s in failed:
        out.print(f"[red]traceback of step {esc(s.name)}[/]")
        out.print(s.traceback, markup=False, highlight=False)


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
    c = client()
    records = [c.get_run(ref).record for ref in run_refs]
    rows: list[tuple[str, list[Any]]] = [
        ("status", [r.status for r in records]),
        ("duration", [fmt_duration(r.duration_s) for r in records]),
        ("git_commit", [(r.git_commit or "")[:12] for r in records]),
    ]
    for kind in ("params", "metrics", "tags"):
        keys = sorted({k for r in records for k in getattr(r, kind)})
        rows += [(f"{kind}.{k}", [getattr(r, kind).get(k) for r in records]) for k in keys]
    if as_json:
        print_json(
            {
                "runs": [r.label for r in records],
                "rows": {name: values for name, values in rows},
                "different": [name for name, values in rows if len({repr(v) for v in values}) > 1],
            }
        )
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    table.add_column("")
    for r in records:
        table.add_column(text(f"{r.label} ({r.short_id})"))
    for name, values in rows:
        differs = len({repr(v) for v in values}) > 1
        if not differs and not show_all:
            continue
        cells = ["–" if v is None else fmt_num(v) for v in values]
        style = "bold yellow" if differs else ""
        table.add_row(text(name, style), *(text(c, "yellow" if differs else "") for c in cells))
    console().print(table)
