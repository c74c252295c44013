"""``loopml sweep PIPELINE -p KEY=VALUES …``: a parameter sweep, each trial a tracked run.

``loopml sweep train …`` is short for ``loopml sweep run train …``; ``loopml sweep show ID``
re-reads a sweep from the store. On a terminal a live bar shows trials done and the best
so far; elsewhere one line per finished trial goes to stderr. The command is a thin shell
over ``loopml.pipelines.sweep``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from loopml.cli.output import (
    STATUS_STYLE,
    console,
    fit_table,
    fmt_duration,
    fmt_num,
    json_option,
    omitted_note,
    on_option,
    print_json,
    text,
)
from loopml.store.status import RunStatus


class _SweepGroup(click.Group):
    """``loopml sweep PIPELINE …`` runs ``loopml sweep run PIPELINE …``."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["run", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_SweepGroup)
def sweep() -> None:
    """Run a pipeline over a grid or a sample of parameters; every trial is a run.

    `loopml sweep PIPELINE -p …` is short for `loopml sweep run PIPELINE -p …`.

    \b
    Examples:
      loopml sweep train -p alpha=0.01,0.1,1,10 -p seed=0..2 --metric rmse
      loopml sweep train -p alpha=log:0.001..10 --random 20 --metric rmse --parallel 4
      loopml sweep show train-1a2b3c4d
    """


class _Progress:
    """A live bar (trials done, best so far) on a terminal; one line per trial otherwise."""

    def __init__(self, *, live: bool, quiet: bool) -> None:
        self.quiet = quiet
        self.sweep: Any = None
        self.running = 0
        self.live: Any = None
        if live and not quiet:
            from rich.live import Live

            self.live = Live(
                text("starting…"),
                refresh_per_second=8,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.start()

    def _render(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        sweep = self.sweep
        done = len(sweep.trials)
        total = sweep.total or done
        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            ProgressBar(total=max(total, 1), completed=done, width=40),
            text(f"{done}/{total} trials · {self.running} running · {_best_text(sweep)}"),
        )
        return grid

    def __call__(self, event: str, trial: Any, sweep: Any) -> None:
        self.sweep = sweep
        self.running += 1 if event == "started" else -1
        if self.live is not None:
            self.live.update(self._render())
        elif not self.quiet and event == "finished":
            value = f"  {sweep.metric}={fmt_num(trial.value)}" if trial.value is not None else ""
            error = f"  {trial.error.splitlines()[-1][:120]}" if trial.error else ""
            click.echo(
                f"  trial {trial.number}/{sweep.total}  {trial.status:>9}  {trial.run or '–'}  "
                f"{_params_text(trial.params)}{value}  {fmt_duration(trial.duration_s)}{error}",
                err=True,
            )

    def stop(self) -> None:
        if self.live is not None:
            if self.sweep is not None:
                self.live.update(self._render())
            self.live.stop()
            self.live = None


def _params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={fmt_num(v)}" for k, v in params.items())


def _best_text(sweep: Any) -> str:
    best = sweep.best
    if best is None:
        return "no best yet" if sweep.metric else "no --metric: not ranked"
    return f"best {sweep.metric}={fmt_num(best.value)} (trial {best.number})"


@sweep.command(name="run")
@click.argument("pipeline")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUES",
    help="Values to try: a,b,c (list), 3..8 (integer range), 0.001..0.1 or log:0.001..1 "
    "(interval, with --random/--optuna), or one value (repeatable).",
)
@click.option(
    "--random",
    "random_n",
    type=click.IntRange(1, 100_000),
    default=None,
    metavar="N",
    help="Draw N random trials instead of the full grid.",
)
@click.option(
    "--optuna",
    "optuna_n",
    type=click.IntRange(1, 100_000),
    default=None,
    metavar="N",
    help="Run N trials chosen by Optuna's TPE sampler (needs --metric; pip install optuna).",
)
@click.option("--seed", type=int, default=None, help="Seed for --random and --optuna draws.")
@click.option("--metric", default=None, metavar="NAME", help="The run metric that ranks trials.")
@click.option("--maximize", is_flag=True, help="Higher --metric is better (default: lower).")
@click.option(
    "--parallel",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Trials that run at once.",
)
@click.option("--no-cache", is_flag=True, help="Run every step even when a cached result exists.")
@on_option
@json_option
def run(
    pipeline: str,
    params: tuple[str, ...],
    random_n: int | None,
    optuna_n: int | None,
    seed: int | None,
    metric: str | None,
    maximize: bool,
    parallel: int,
    no_cache: bool,
    on: str | None,
    as_json: bool,
) -> None:
    """Run PIPELINE once per combination of -p values (or per sampled trial).

    Each trial is a tracked run tagged sweep=ID; the best trial by --metric is reported.
    A failed trial does not stop the others; the command exits 1 only if every trial
    failed. Ctrl-C cancels the running trials.

    \b
    Examples:
      loopml sweep train -p alpha=0.01,0.1,1,10 -p depth=3..8 --parallel 8 --on ray
      loopml sweep train -p alpha=log:0.001..10 --random 20 --seed 1 --metric rmse
      loopml sweep train -p alpha=0.001..10 --optuna 30 --metric r2 --maximize
    """
    from loopml.config import load_settings
    from loopml.pipelines.discovery import find_pipeline
    from loopml.pipelines.sweep import run_sweep
    from loopml.tracking.client import Client

    if random_n is not None and optuna_n is not None:
        raise click.UsageError("Give --random N or --optuna N, not both.")
    if not params:
        raise click.UsageError(
            "Give the values to try with -p, e.g. -p alpha=0.01,0.1,1 -p depth=3..8."
        )
    strategy, n = (
        ("random", random_n) if random_n else ("optuna", optuna_n) if optuna_n else ("grid", None)
    )
    settings = load_settings()
    target = find_pipeline(settings, pipeline)
    client = Client(settings).open()
    progress = _Progress(live=sys.stderr.isatty() and not as_json, quiet=as_json)
    try:
        result = run_sweep(
            target,
            list(params),
            metric=metric,
            goal="max" if maximize else "min",
            strategy=strategy,
            n=n,
            seed=seed,
            parallel=parallel,
            executor=on,
            client=client,
            cache=not no_cache,
            progress=progress,
        )
    except KeyboardInterrupt:
        progress.stop()
        where = f"; see loopml sweep show {progress.sweep.id}" if progress.sweep else ""
        click.secho(
            f"Cancelled (Ctrl-C): running trials were marked cancelled{where}.",
            fg="yellow",
            err=True,
        )
        sys.exit(130)
    finally:
        progress.stop()
    _report(result, as_json=as_json)
    if result.trials and all(t.status != RunStatus.SUCCEEDED for t in result.trials):
        click.secho(
            f"Error: every trial of sweep {result.id} failed ({len(result.trials)}); "
            f"see loopml runs show {result.trials[0].run_id[:8] if result.trials[0].run_id else '…'}.",
            fg="red",
            err=True,
        )
        sys.exit(1)


@sweep.command(name="show")
@click.argument("sweep_id", metavar="[ID]", required=False)
@click.option("--metric", default=None, metavar="NAME", help="Rank by this metric instead.")
@click.option(
    "--maximize/--minimize",
    default=None,
    help="Whether higher --metric is better (default: as the sweep ran).",
)
@json_option
def show(sweep_id: str | None, metric: str | None, maximize: bool | None, as_json: bool) -> None:
    """Show sweep ID (default: the latest) from the store: its trials and the best one.

    \b
    Examples:
      loopml sweep show train-1a2b3c4d
      loopml sweep show --metric r2 --maximize --json
    """
    from loopml.cli.output import client
    from loopml.pipelines.sweep import latest_sweep, open_sweep

    reader = client()
    found = open_sweep(
        sweep_id or latest_sweep(reader),
        client=reader,
        metric=metric,
        goal=None if maximize is None else "max" if maximize else "min",
    )
    _report(found, as_json=as_json)


def _report(result: Any, *, as_json: bool) -> None:
    """The trials as a table (best row highlighted) and the best trial's line, or JSON."""
    if as_json:
        print_json(result.to_dict())
        return
    from loopml.pipelines.sweep_view import param_keys

    best = result.best
    keys = param_keys(result)
    trials = result.trials

    def mark(trial: Any, value: str, style: str = "") -> Any:
        return text(value, "bold green" if trial is best else style)

    columns = [
        ("trial", [mark(t, str(t.number)) for t in trials], "right"),
        ("status", [mark(t, t.status, STATUS_STYLE.get(t.status, "")) for t in trials], "left"),
        ("run", [mark(t, t.run or "–") for t in trials], "left"),
        (
            result.metric or "metric",
            [mark(t, fmt_num(t.value) if t.value is not None else "–") for t in trials],
            "right",
        ),
        *[(k, [mark(t, fmt_num(t.params.get(k, "–"))) for t in trials], "right") for k in keys],
        ("duration", [mark(t, fmt_duration(t.duration_s)) for t in trials], "right"),
        (
            "error",
            [text((t.error or "").splitlines()[-1][:80] if t.error else "") for t in trials],
            "left",
        ),
    ]
    out = console()
    table, omitted = fit_table(columns)
    out.print(table)
    if omitted:
        out.print(text(omitted_note(omitted), "dim"))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts().items()))
    click.echo(f"Sweep {result.id}: {result.strategy}, {len(trials)} trials ({counts or 'none'}).")
    if best is not None:
        click.secho(
            f"Best: trial {best.number} {best.run} {result.metric}={fmt_num(best.value)} "
            f"({'max' if result.goal == 'max' else 'min'}) with {_params_text(best.params)}",
            fg="green",
        )
        click.echo(f"  details: loopml runs show {best.run_id[:8] if best.run_id else '–'}")
    elif result.metric is None:
        click.echo("  Not ranked: give --metric NAME to pick the best trial.")
    else:
        click.echo(f"  No succeeded trial logged {result.metric!r}; nothing to rank.")
    click.echo(f"  again: loopml sweep show {result.id}")
