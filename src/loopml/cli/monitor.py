"""``loopml monitors`` and ``loopml monitor …``: drift, quality and live performance by window.

Thin shells over ``loopml.monitoring`` (what the REST API, the web UI and the scheduler call).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from loopml.cli.output import client, console, esc, fmt_time, json_option, print_json, text


def _writer() -> Any:
    return client(readonly=False)


def _time(value: str | None, what: str) -> float | None:
    """ISO 8601 (naive = UTC) or a date, as Unix seconds."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: expected a date or time in ISO 8601, e.g. 2026-01-01 or "
            "2026-01-01T06:00:00+01:00 (without a zone: UTC).",
            param_hint=what,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@click.command()
@json_option
def monitors(as_json: bool) -> None:
    """List monitors: the model they watch, their last window, its status and alerts.

    \b
    Examples:
      loopml monitors
      loopml monitors --json
    """
    from loopml.monitoring import list_monitors
    from loopml.monitoring.monitors import describe

    found = list_monitors(_writer())
    if as_json:
        print_json(
            [
                {
                    **describe(i.record),
                    "status": i.status,
                    "alerts": i.alerts,
                    "last_window": None
                    if i.last is None
                    else {"start": i.last.start, "end": i.last.end, "rows": i.last.rows},
                    "last_alerts": i.last_alerts,
                    "next_window_end": i.next_window_end,
                }
                for i in found
            ]
        )
        return
    if not found:
        console().print(
            "No monitors yet. Add one with `loopml monitor add NAME --model MODEL@ALIAS "
            "--reference DATASET@N --window 1d`."
        )
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("monitor", "model", "window", "last window", "rows", "status", "alerts", "next"):
        table.add_column(column)
    for i in found:
        r, last = i.record, i.last
        table.add_row(
            text(r.name),
            text(r.model),
            _span(r.window_s) + ("" if r.every_s == r.window_s else f" every {_span(r.every_s)}"),
            "–" if last is None else fmt_time(last.start),
            "–" if last is None else f"{last.rows:,}",
            i.status + (f" ({', '.join(i.last_alerts)})" if i.last_alerts else ""),
            str(i.alerts),
            "paused" if r.paused else fmt_time(i.next_window_end),
        )
    console().print(table)


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@click.group()
def monitor() -> None:
    """Add, run, show, report, backfill, pause, resume or remove a monitor.

    \b
    Examples:
      loopml monitor add churn-live --model churn@production --reference churn@3 --window 1d \\
          --rules monitors/churn.toml --on-alert retrain:train --notify http://127.0.0.1:9000/hook
      loopml monitor run churn-live
      loopml monitor show churn-live
      loopml monitor report churn-live --html report.html
      loopml monitor backfill churn-live --from 2026-01-01
    """


@monitor.command("add")
@click.argument("name")
@click.option("--model", "model", required=True, help="The served reference: NAME@ALIAS.")
@click.option(
    "--reference",
    default="training",
    show_default=True,
    help="A dataset version (NAME@N), 'training' (the model's training data) or 'previous'.",
)
@click.option("--window", default="1d", show_default=True, help="Window length: 1d, 6h, 30m.")
@click.option("--every", default=None, help="Start a window this often (sliding windows).")
@click.option("--rules", type=click.Path(dir_okay=False), help="Rules TOML file.")
@click.option(
    "--on-alert",
    "on_alert",
    multiple=True,
    help="retrain:PIPELINE runs the pipeline when a rule fires (once per rule and window).",
)
@click.option("--notify", multiple=True, help="Webhook URL (Slack-compatible JSON POST).")
@click.option(
    "--auto-promote", is_flag=True, help="Promote a retrained version that passes the gates."
)
@click.option("--target", default=None, help="The label column of the reference data.")
@click.option("--from", "start", default=None, help="Evaluate windows from this date (UTC).")
@click.option("--replace", is_flag=True, help="Replace a monitor of the same name.")
@json_option
def add(
    name: str,
    model: str,
    reference: str,
    window: str,
    every: str | None,
    rules: str | None,
    on_alert: tuple[str, ...],
    notify: tuple[str, ...],
    auto_promote: bool,
    target: str | None,
    start: str | None,
    replace: bool,
    as_json: bool,
) -> None:
    """Watch a served model's logged predictions, window by window.

    \b
    Examples:
      loopml monitor add churn-live --model churn@production --window 1d
      loopml monitor add churn-live --model churn@production --reference churn@3 \\
          --window 1d --rules monitors/churn.toml --on-alert retrain:train --auto-promote
    """
    from loopml.monitoring import add_monitor
    from loopml.monitoring.monitors import describe

    retrain = None
    for action in on_alert:
        kind, _, value = action.partition(":")
        if kind != "retrain" or not value:
            raise click.BadParameter(
                f"{action!r}: expected retrain:PIPELINE (alerts are always recorded; "
                "--notify URL sends them to a webhook).",
                param_hint="--on-alert",
            )
        retrain = value
    record = add_monitor(
        name,
        model=model,
        reference=reference,
        window=window,
        every=every,
        rules=rules,
        retrain=retrain,
        notify=notify,
        auto_promote=auto_promote,
        target=target,
        start=_time(start, "--from"),
        replace=replace,
        client=_writer(),
    )
    if as_json:
        print_json(describe(record))
        return
    console().print(
        f"Monitor {esc(name)} watches {esc(model)} in windows of "
        f"{_span(record.window_s)} from {fmt_time(record.origin)} against "
        f"{esc(reference)}. `loopml monitor run {name}` evaluates the closed windows "
        "(a running `loopml scheduler` or server does it on its own)."
    )


@monitor.command("run")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait for retrain runs and apply --auto-promote.")
@json_option
def run(name: str, wait: bool, as_json: bool) -> None:
    """Evaluate the closed windows not evaluated yet (and those whose labels arrived since).

    \b
    Example:
      loopml monitor run churn-live
    """
    _evaluate(name, None, None, wait, as_json)


@monitor.command("backfill")
@click.argument("name")
@click.option("--from", "since", required=True, help="First window's date (UTC), e.g. 2026-01-01.")
@click.option("--to", "until", default=None, help="Windows closed by this date (default: now).")
@click.option("--wait", is_flag=True, help="Wait for retrain runs and apply --auto-promote.")
@json_option
def backfill(name: str, since: str, until: str | None, wait: bool, as_json: bool) -> None:
    """Evaluate the windows of a past period; a window evaluated already is not redone.

    \b
    Example:
      loopml monitor backfill churn-live --from 2026-01-01
    """
    _evaluate(name, _time(since, "--from"), _time(until, "--to"), wait, as_json)


def _evaluate(
    name: str, since: float | None, until: float | None, wait: bool, as_json: bool
) -> None:
    from loopml.cli.output import with_progress
    from loopml.monitoring import run_monitor

    c = _writer()
    if as_json:
        report = run_monitor(name, since=since, until=until, wait=wait, client=c)
        print_json(report.to_dict())
        return
    report = with_progress(
        "evaluating windows",
        lambda advance: run_monitor(
            name, since=since, until=until, wait=wait, progress=advance, client=c
        ),
        show=True,
    )
    out = console()
    if report.paused:
        out.print(f"Monitor {esc(name)} is paused: nothing evaluated.")
        return
    out.print(
        f"{len(report.evaluated)} window(s) evaluated, {report.up_to_date} up to date, "
        f"{len(report.alerts)} new alert(s)."
    )
    for a in report.alerts:
        out.print(f"[red]alert[/] {esc(a.message)}")
    for line in report.actions:
        out.print(f"  {esc(line)}")


@monitor.command("show")
@click.argument("name")
@click.option("--limit", type=int, default=10, show_default=True, help="Windows to show.")
@json_option
def show(name: str, limit: int, as_json: bool) -> None:
    """Show the newest windows: rows, labels, the features the rules flag, prediction mix,
    missing values, live and estimated metrics, alerts.

    \b
    Example:
      loopml monitor show churn-live
    """
    from loopml.monitoring import alerts, get_monitor, windows
    from loopml.monitoring.engine import alert_json
    from loopml.monitoring.monitors import describe
    from loopml.monitoring.report import actions_text
    from loopml.monitoring.summary import window_rows

    c = _writer()
    record = get_monitor(name, client=c)
    found = windows(name, client=c)[-limit:] if limit > 0 else []
    fired = alerts(name, limit=200, client=c)
    if as_json:
        print_json(
            {
                **describe(record),
                "windows": [
                    {"start": w.start, "end": w.end, "rows": w.rows, "labels": w.labels, **w.stats}
                    for w in found
                ],
                "alerts": [alert_json(a) for a in fired],
            }
        )
        return
    out = console()
    out.print(
        f"[bold]{esc(name)}[/]: {esc(record.model)} against "
        f"{esc(record.reference)}, windows of {_span(record.window_s)}"
        + ("" if record.every_s == record.window_s else f" every {_span(record.every_s)}")
        + (", paused" if record.paused else "")
    )
    if not found:
        out.print("No window evaluated yet: `loopml monitor run " + name + "`.")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in (
        "window (UTC)",
        "rows",
        "labels",
        "flagged features",
        "prediction mix",
        "missing",
        "live",
        "estimated",
        "alerts",
    ):
        table.add_column(column)
    by_window: dict[float, list[str]] = {}
    for a in fired:
        by_window.setdefault(a.window_start, []).append(a.rule)
    for w, row in zip(found, window_rows(found), strict=True):
        table.add_row(*row, ", ".join(sorted(by_window.get(w.start, []))) or "–")
    out.print(table)
    if fired:
        out.print("[bold]Alerts[/] (newest first)")
        for a in fired[:20]:
            did = actions_text(a)
            out.print(f"  {a.id}: {esc(a.message)}" + (f" ({esc(did)})" if did else ""))


@monitor.command("report")
@click.argument("name")
@click.option("--html", "html", required=True, type=click.Path(dir_okay=False), help="Output file.")
@click.option("--limit", type=int, default=200, show_default=True, help="Newest windows drawn.")
def report(name: str, html: str, limit: int) -> None:
    """Write an HTML page with charts over time: drift per feature, rows, prediction mix,
    live and estimated metrics, alerts (self-contained: no script, no network).

    \b
    Example:
      loopml monitor report churn-live --html report.html
    """
    from loopml.monitoring.report import write_report

    path = write_report(name, html, limit=limit, client=_writer())
    console().print(f"Wrote {path}")


@monitor.command("pause")
@click.argument("name")
def pause(name: str) -> None:
    """Stop evaluating a monitor (its windows and alerts stay).

    \b
    Example:
      loopml monitor pause churn-live
    """
    from loopml.monitoring import set_paused

    set_paused(name, True, client=_writer())
    console().print(f"Monitor {esc(name)} paused.")


@monitor.command("resume")
@click.argument("name")
def resume(name: str) -> None:
    """Evaluate a paused monitor again, the windows it missed included.

    \b
    Example:
      loopml monitor resume churn-live
    """
    from loopml.monitoring import set_paused

    set_paused(name, False, client=_writer())
    console().print(f"Monitor {esc(name)} resumed.")


@monitor.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Delete a monitor with its windows and alerts (the runs it started stay).

    \b
    Example:
      loopml monitor remove churn-live
    """
    from loopml.monitoring import remove_monitor

    remove_monitor(name, client=_writer())
    console().print(f"Monitor {esc(name)} removed.")
