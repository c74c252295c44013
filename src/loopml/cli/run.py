"""``loopml run PIPELINE``: run a project pipeline with live step progress.

Each step's line says why it ran or where it came from ("from cache: run train#3",
"parameter alpha: 0.5 → 0.7"). Ctrl-C ends the run as ``cancelled`` and says so.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from loopml.cli.output import (
    STATUS_STYLE,
    fmt_cost,
    fmt_duration,
    fmt_num,
    json_option,
    on_option,
    print_json,
    text,
)
from loopml.store.status import StepStatus


class _Progress:
    """Live step table on a terminal; one line per event otherwise (CI logs, pipes)."""

    def __init__(self, total: int, *, live: bool, quiet: bool) -> None:
        self.total = total
        self.done = 0
        self.quiet = quiet
        self.rows: dict[str, tuple[str, str]] = {}
        self.started: dict[str, float] = {}
        self.live: Any = None
        if live and not quiet:
            from rich.live import Live

            self.live = Live(
                self._render(),
                refresh_per_second=8,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.start()

    def _render(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        for name, (status, detail) in self.rows.items():
            if status == StepStatus.RUNNING:
                elapsed = fmt_duration(time.perf_counter() - self.started[name])
                detail = f"{elapsed}  ({detail})" if detail else elapsed
            table.add_row(
                text(f"{status:>9}", STATUS_STYLE.get(status, "")), text(name), text(detail)
            )
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(total=max(self.total, 1), completed=self.done, width=40),
            f"{self.done}/{self.total} steps",
        )
        outer = Table.grid()
        outer.add_row(table)
        outer.add_row(bar)
        return outer

    def __call__(self, event: str, name: str, **info: Any) -> None:
        from loopml.store.reasons import describe

        why = describe(info.get("reason"))
        if event == "started":
            self.started[name] = time.perf_counter()
            self.rows[name] = (StepStatus.RUNNING, why)
        elif event == "retrying":  # an attempt failed and @step(retries=) allows another
            error = (info.get("error") or "").splitlines()[-1:] or [""]
            self.started[name] = time.perf_counter()
            self.rows[name] = (StepStatus.RUNNING, f"retrying after: {error[0][:120]}")
            if self.live is None and not self.quiet:
                click.echo(f"   retrying  {name}  after: {error[0][:200]}", err=True)
        else:
            self.done += 1
            if event == "cached":
                detail = why or "from cache"
            else:
                detail = fmt_duration(info.get("wall_s")) + (f"  ({why})" if why else "")
            if info.get("error"):
                detail += f"  {info['error'].splitlines()[-1][:120]}"
            self.rows[name] = ("cached" if event == "cached" else event, detail)
        if self.live is not None:
            self.live.update(self._render())
        elif not self.quiet and event != "started":
            status, detail = self.rows[name]
            click.echo(f"  {status:>9}  {name}  {detail}", err=True)

    def stop(self) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.stop()


@click.command()
@click.argument("pipeline", required=False)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A pipeline parameter, typed from its signature (repeatable).",
)
@click.option("--no-cache", is_flag=True, help="Run every step even when a cached result exists.")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Steps that may run at once (default: [run] workers).",
)
@on_option
@json_option
def run(
    pipeline: str | None,
    params: tuple[str, ...],
    no_cache: bool,
    workers: int | None,
    on: str | None,
    as_json: bool,
) -> None:
    """Run PIPELINE from this project; every step is tracked and cached.

    Without PIPELINE, lists the project's pipelines. Each step line says why the step
    ran, or which earlier run its outputs came from.

    \b
    Examples:
      loopml run train -p alpha=0.5
      loopml run train -p alpha=0.5 --no-cache
      loopml run train --on ray://127.0.0.1:10001
    """
    from loopml.config import load_settings
    from loopml.pipelines.discovery import find_pipeline
    from loopml.tracking.client import Client

    settings = load_settings()
    if pipeline is None:
        from loopml.cli.pipelines import show_pipelines

        show_pipelines(settings, as_json=as_json, hint=True)
        return
    target = find_pipeline(settings, pipeline)
    values = target.parse_params(list(params))
    bound = target.bind(**values)
    dag = target.dag(**bound)
    client = Client(settings).open()
    progress = _Progress(len(dag), live=sys.stderr.isatty() and not as_json, quiet=as_json)
    try:
        result = target.run(
            bound,
            cache=not no_cache,
            workers=workers,
            client=client,
            executor=on,
            progress=progress,
        )
    except KeyboardInterrupt:
        progress.stop()
        click.secho("Cancelled (Ctrl-C): the run was marked cancelled.", fg="yellow", err=True)
        sys.exit(130)
    finally:
        progress.stop()
    record = result.record
    steps = result.steps
    cached = sum(1 for s in steps if s.cached)
    if as_json:
        print_json(
            {
                "id": record.id,
                "run": record.label,
                "status": record.status,
                "duration_s": record.duration_s,
                "metrics": record.metrics,
                "params": record.params,
                "cached_steps": cached,
                "steps": len(steps),
                "step_reasons": {s.name: {"why": s.why, **(s.reason or {})} for s in steps},
                "outputs": result.outputs(),
                "cost": record.cost,
            }
        )
        return
    shown = {  # a suite's interval bounds (X.low, X.high) stay in `runs show` and --json
        k: v
        for k, v in record.metrics.items()
        if not (k.endswith((".low", ".high")) and k.rpartition(".")[0] in record.metrics)
    }
    metrics = "  ".join(f"{k}={fmt_num(v)}" for k, v in sorted(shown.items())[:20])
    cost = fmt_cost(record.cost, settings.prices.currency)
    click.secho(
        f"Run {record.label} ({record.short_id}) {record.status} in {fmt_duration(record.duration_s)}"
        f" · {cached}/{len(steps)} steps from cache · {cost}",
        fg="green",
        err=False,
    )
    if metrics:
        click.echo(f"  {metrics}")
    click.echo(f"  details: loopml runs show {record.short_id}")
