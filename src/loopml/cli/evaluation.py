"""``loopml suite``, ``suites``, ``eval``, ``leaderboard``, ``compare``: evaluation suites.

Thin shells over ``loopml.evaluation`` (the functions Python users call).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from loopml.cli.output import client, console, esc, fmt_time, json_option, print_json, with_progress


def _suite_json(v: Any) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": v.number,
        "ref": v.label,
        "data": v.dataset,
        "dataset_digest": v.dataset_digest,
        "target": v.target,
        "task": v.task,
        "split": v.split,
        "options": v.options,
        "indices_hash": v.indices_hash,
        "test_rows": v.test_rows,
        "created_at": v.created_at,
    }


@click.group()
def suite() -> None:
    """Define and inspect evaluation suites: data, split and metrics fixed once.

    \b
    Examples:
      loopml suite create churn-holdout --data churn@3 --target churned --task binary \\
          --split stratified:test=0.2,seed=7 --slice region
      loopml suite show churn-holdout
    """


@suite.command("create")
@click.argument("name")
@click.option(
    "--data",
    required=True,
    help="A dataset version (NAME@N) or a CSV/Parquet/JSON lines file (added as a version).",
)
@click.option("--target", required=True, help="The column models predict.")
@click.option(
    "--task",
    required=True,
    type=click.Choice(["binary", "multiclass", "regression", "forecasting"]),
    help="What kind of prediction: sets the default metrics.",
)
@click.option(
    "--split",
    "split_text",
    help="random|stratified|group|time|rolling:KEY=VALUE,… (default: stratified for "
    "classification, random for regression, the last 20 %% in time for forecasting).",
)
@click.option(
    "--slice", "slices", multiple=True, help="A column to report metrics per value of (repeat)."
)
@click.option(
    "--feature",
    "features",
    multiple=True,
    help="A column models see (repeat; default: all but the target and the split's column).",
)
@click.option(
    "--threshold", type=float, default=0.5, show_default=True, help="Binary: score -> positive."
)
@click.option(
    "--metric", "metrics", multiple=True, help="A custom metric as module:function (repeat)."
)
@click.option(
    "--season", type=int, default=1, show_default=True, help="Forecasting: MASE's naive lag."
)
@json_option
def create(
    name: str,
    data: str,
    target: str,
    task: str,
    split_text: str | None,
    slices: tuple[str, ...],
    features: tuple[str, ...],
    threshold: float,
    metrics: tuple[str, ...],
    season: int,
    as_json: bool,
) -> None:
    """Define a suite: a new version if the definition differs from the newest one.

    The split runs once, now: its row indices are stored with the suite, so every model is
    judged on exactly the same test rows.

    \b
    Split kinds:
      random:test=0.2,seed=7             stratified:test=0.2,validation=0.1,seed=7
      group:column=customer,test=0.2     time:column=date,cutoff=2024-01-01
      rolling:column=date,horizon=12,folds=5
    """
    from loopml.evaluation.suites import create_suite

    made, created = create_suite(
        name,
        data=data,
        target=target,
        task=task,
        split=split_text,
        slices=slices,
        features=list(features) or None,
        threshold=threshold,
        metrics=metrics,
        season=season,
        client=client(readonly=False),
    )
    if as_json:
        print_json({**_suite_json(made.version), "created": created})
        return
    v = made.version
    what = "Defined" if created else "Unchanged: already"
    console().print(
        f"{what} {esc(v.label)}: {esc(v.dataset)}, target {esc(v.target)!r}, {v.task}, "
        f"split {esc(v.split)} ({v.test_rows:,} test rows)"
    )
    if created:
        console().print(f"Evaluate a model: loopml eval {esc(v.name)} --run RUN --output OUTPUT")


@suite.command("show")
@click.argument("ref")
@json_option
def show(ref: str, as_json: bool) -> None:
    """Show a suite version's definition and its versions."""
    c = client()
    v = c.suite_version(ref)
    versions = c.suite_versions(v.name)
    if as_json:
        print_json({**_suite_json(v), "versions": [_suite_json(x) for x in versions]})
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("suite", v.label),
        ("data", f"{v.dataset} ({v.dataset_digest[:12]})"),
        ("target", v.target),
        ("task", v.task),
        ("split", v.split),
        ("test rows", f"{v.test_rows:,}"),
        ("row indices", v.indices_hash[:16]),
        ("features", ", ".join(v.options.get("features", []))),
        ("slices", ", ".join(v.options.get("slices", [])) or "–"),
        ("custom metrics", ", ".join(v.options.get("metrics", [])) or "–"),
        ("defined", fmt_time(v.created_at)),
        ("versions", ", ".join(f"@{x.number}" for x in versions)),
    ]
    for key, value in rows:
        table.add_row(key, Text(str(value)))
    console().print(table)


@suite.command("rm")
@click.argument("ref")
def rm(ref: str) -> None:
    """Remove a suite version and its stored evaluations; `loopml gc` frees their blobs."""
    v = client(readonly=False).remove_suite_version(ref)
    console().print(f"Removed {esc(v.label)} and its evaluations.")


@click.command()
@json_option
def suites(as_json: bool) -> None:
    """List evaluation suites with their newest version."""
    found = client().suites()
    if as_json:
        print_json([_suite_json(v) for v in found])
        return
    if not found:
        console().print(
            "No suites yet. Define one with `loopml suite create NAME --data DATA --target COL "
            "--task TASK`."
        )
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False)
    for column in ("suite", "data", "target", "task", "split", "test rows", "defined"):
        table.add_column(column, justify="right" if column == "test rows" else "left")
    for v in found:
        table.add_row(
            Text(v.label),
            Text(v.dataset),
            Text(v.target),
            v.task,
            Text(v.split),
            f"{v.test_rows:,}",
            fmt_time(v.created_at),
        )
    console().print(table)


def _model_ref(model: str | None, run: str | None, output: str | None) -> str:
    if model and (run or output):
        raise click.UsageError("Give either --model, or --run with --output, not both.")
    if model:
        return model
    if run and output:
        return f"{run}:{output}"
    raise click.UsageError(
        "Which model? --model DIGEST, or --run RUN --output OUTPUT (`loopml runs show RUN` "
        "lists a run's outputs)."
    )


@click.command("eval")
@click.argument("suite_ref", metavar="SUITE")
@click.option("--model", help="A stored model: its digest (or RUN:OUTPUT).")
@click.option("--run", help="The run whose step output is the model (with --output).")
@click.option("--output", help="The name of that output, e.g. 'train'.")
@click.option("--report", type=click.Path(path_type=Path), help="Also write the HTML report here.")
@click.option("--force", is_flag=True, help="Compute again even if a stored result exists.")
@click.option("--resamples", type=int, default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option(
    "--confidence", type=float, default=0.95, show_default=True, help="The intervals' level."
)
@json_option
def eval_(
    suite_ref: str,
    model: str | None,
    run: str | None,
    output: str | None,
    report: Path | None,
    force: bool,
    resamples: int,
    seed: int,
    confidence: float,
    as_json: bool,
) -> None:
    """Judge a model on a suite: metrics with confidence intervals, per slice; stored.

    \b
    Examples:
      loopml eval churn-holdout --run train#3 --output train --report eval.html
      loopml eval churn-holdout --model 3f2a9c0d1e2b
    """
    from loopml.evaluation.suites import suite as get_suite

    ref = _model_ref(model, run, output)
    s = get_suite(suite_ref, client=client(readonly=False))
    result = with_progress(
        "bootstrap",
        lambda progress: s.evaluate(
            ref,
            force=force,
            resamples=resamples,
            seed=seed,
            confidence=confidence,
            progress=progress,
        ),
        show=not as_json,
    )
    if report is not None:
        result.to_html(report)
    if as_json:
        print_json(result.to_dict())
        return
    out = console()
    out.print(result)
    slices = result.slices_table()
    if slices is not None:
        out.print()
        out.print(slices)
    if report is not None:
        out.print(f"Wrote {esc(report)}")


@click.command()
@click.argument("suite_ref", metavar="SUITE")
@click.option("--metric", help="Rank by this metric (default: the task's primary metric).")
@click.option(
    "--confidence", type=float, default=0.95, show_default=True, help="The intervals' level."
)
@json_option
def leaderboard(suite_ref: str, metric: str | None, confidence: float, as_json: bool) -> None:
    """Rank the models evaluated on a suite; group those that are statistically tied.

    \b
    Example:
      loopml leaderboard churn-holdout --metric pr_auc
    """
    from loopml.evaluation.suites import suite as get_suite

    board = get_suite(suite_ref, client=client()).leaderboard(metric=metric, confidence=confidence)
    if as_json:
        print_json(board.to_dict())
        return
    if not board.entries:
        console().print(
            f"No model evaluated on {esc(board.suite)} yet: `loopml eval {esc(suite_ref)} --run "
            "RUN --output OUTPUT`."
        )
        return
    console().print(board)


@click.command()
@click.argument("suite_ref", metavar="SUITE")
@click.argument("model_a", metavar="A")
@click.argument("model_b", metavar="B")
@click.option("--resamples", type=int, default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option(
    "--confidence", type=float, default=0.95, show_default=True, help="The intervals' level."
)
@json_option
def compare(
    suite_ref: str,
    model_a: str,
    model_b: str,
    resamples: int,
    seed: int,
    confidence: float,
    as_json: bool,
) -> None:
    """Compare two models on a suite: paired difference per metric, interval, p-value, verdict.

    A and B are evaluations (#N, from `loopml leaderboard`), stored models' digests or
    RUN:OUTPUT; models not yet evaluated are evaluated first.

    \b
    Examples:
      loopml compare churn-holdout '#3' '#4'
      loopml compare churn-holdout train#3:train train#4:train
    """
    from loopml.evaluation.suites import suite as get_suite

    s = get_suite(suite_ref, client=client(readonly=False))
    result = s.compare(model_a, model_b, resamples=resamples, seed=seed, confidence=confidence)
    if as_json:
        print_json(result.to_dict())
        return
    console().print(result)
