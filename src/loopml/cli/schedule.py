"""``loopml schedules``, ``loopml schedule …`` and ``loopml scheduler``: pipelines on a cron.

Thin shells over ``loopml.scheduler.schedules`` (what the REST API calls too).
"""

from __future__ import annotations

import time
from typing import Any

import click

from loopml.cli.output import (
    client,
    console,
    fmt_cost,
    fmt_duration,
    fmt_time,
    json_option,
    print_json,
    text,
)


def _writer() -> Any:
    return client(readonly=False)


def _who() -> str:
    from loopml.registry.versions import who

    return who()


@click.command()
@json_option
def schedules(as_json: bool) -> None:
    """List schedules: next fire time, last status, duration and cost, paused or not.

    Schedules declared in loopml.toml ([schedules.NAME]) are applied first.

    \b
    Examples:
      loopml schedules
      loopml schedules --json
    """
    from loopml.scheduler.schedules import list_schedules

    c = _writer()
    found = list_schedules(c)
    if as_json:
        print_json([i.to_json() for i in found])
        return
    if not found:
        console().print(
            "No schedules yet. Add one with `loopml schedule add NAME --pipeline P --cron "
            "'0 6 * * MON'`, or a [schedules.NAME] table in loopml.toml."
        )
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in (
        "schedule",
        "pipeline",
        "cron",
        "next fire",
        "last",
        "duration",
        "cost",
        "state",
    ):
        table.add_column(column)
    currency = c.settings.prices.currency
    for i in found:
        r, last = i.record, i.last
        table.add_row(
            text(r.name),
            text(r.pipeline),
            text(f"{r.cron} ({r.timezone})"),
            "–" if i.next_fire is None else fmt_fire(i.next_fire, r.timezone),
            "–" if last is None else str(last.fire.status),
            fmt_duration(None if last is None else last.run_duration_s),
            fmt_cost(None if last is None else last.run_cost, currency),
            ("paused" if r.paused else "enabled")
            + (" (loopml.toml)" if r.source == "config" else ""),
        )
    console().print(table)


def fmt_fire(ts: float | None, timezone: str) -> str:
    """A fire time in the schedule's own time zone, the one its cron is written in."""
    if ts is None:
        return "–"
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        return datetime.fromtimestamp(ts, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")
    except (KeyError, ValueError):
        return fmt_time(ts)


@click.group()
def schedule() -> None:
    """Add, pause, resume, remove, run or show one schedule.

    \b
    Examples:
      loopml schedule add weekly-score --pipeline score --cron "0 6 * * MON" -p region=north
      loopml schedule pause weekly-score
      loopml schedule run-now weekly-score
      loopml schedule show weekly-score
    """


def _params(values: tuple[str, ...]) -> dict[str, str]:
    from loopml.errors import InvalidParameterError

    out = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidParameterError(
                f"Parameter {item!r}: expected KEY=VALUE, e.g. -p region=north."
            )
        out[key] = value
    return out


@schedule.command("add")
@click.argument("name")
@click.option("--pipeline", required=True, help="The pipeline to run (see `loopml pipelines`).")
@click.option(
    "--cron",
    required=True,
    help="5 fields (minute hour day month weekday), or 6 with seconds first.",
)
@click.option("--timezone", "tz", default="UTC", show_default=True, help="IANA time zone.")
@click.option("-p", "--param", "params", multiple=True, help="KEY=VALUE, repeatable.")
@click.option("--timeout", help="Stop the run after this long and mark it failed: 90s, 30m, 2h.")
@click.option("--retries", type=int, default=0, show_default=True, help="Retries of a failure.")
@click.option(
    "--backoff", default="60s", show_default=True, help="Wait before a retry (doubles each time)."
)
@click.option(
    "--catchup",
    type=click.Choice(["once", "skip", "all"]),
    default="once",
    show_default=True,
    help="Fires missed while no scheduler ran: run the latest once, skip all, or run all.",
)
@click.option(
    "--overlap",
    type=click.Choice(["wait", "skip", "allow"]),
    default="wait",
    show_default=True,
    help="A fire due while the previous one runs: start it when that ends, skip it, or run both.",
)
@click.option("--paused", is_flag=True, help="Create it paused.")
@click.option("--replace", is_flag=True, help="Change the schedule if it exists.")
@json_option
def add(
    name: str,
    pipeline: str,
    cron: str,
    tz: str,
    params: tuple[str, ...],
    timeout: str | None,
    retries: int,
    backoff: str,
    catchup: str,
    overlap: str,
    paused: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Run a pipeline on a cron schedule (a running `loopml scheduler` or server fires it).

    \b
    Examples:
      loopml schedule add weekly-score --pipeline score --cron "0 6 * * MON" -p region=north
      loopml schedule add nightly --pipeline train --cron "30 2 * * *" --timezone Europe/Berlin \\
          --timeout 2h --retries 2 --backoff 5m
    """
    from loopml.scheduler import schedules as lib

    c = _writer()
    record = lib.make_record(
        name,
        pipeline=pipeline,
        cron=cron,
        timezone=tz,
        params=_params(params),
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        catchup=catchup,
        overlap=overlap,
        paused=paused,
        by=_who(),
    )
    stored = lib.add(c, record, replace=replace)
    info = lib.info(c, stored)
    if as_json:
        print_json(info.to_json())
        return
    nxt = "paused" if info.next_fire is None else f"next fire {fmt_fire(info.next_fire, tz)}"
    console().print(f"Schedule {text(name)} runs {text(pipeline)} on {text(cron)} ({tz}); {nxt}.")


def _change(verb: str, name: str, as_json: bool) -> None:
    from loopml.scheduler import schedules as lib

    c = _writer()
    action = {"pause": lib.pause, "resume": lib.resume, "remove": lib.remove}[verb]
    record = action(c, name, by=_who())
    if as_json:
        print_json({"name": record.name, "paused": record.paused, "action": verb})
        return
    said = {"pause": "paused", "resume": "resumed", "remove": "removed"}[verb]
    console().print(f"Schedule {text(name)} {said}.")


@schedule.command("pause")
@click.argument("name")
@json_option
def pause(name: str, as_json: bool) -> None:
    """Stop firing a schedule until it is resumed (fires while paused are not caught up).

    \b
    Example:
      loopml schedule pause weekly-score
    """
    _change("pause", name, as_json)


@schedule.command("resume")
@click.argument("name")
@json_option
def resume(name: str, as_json: bool) -> None:
    """Fire a paused schedule again, from its next due time on.

    \b
    Example:
      loopml schedule resume weekly-score
    """
    _change("resume", name, as_json)


@schedule.command("remove")
@click.argument("name")
@json_option
def remove(name: str, as_json: bool) -> None:
    """Delete a schedule (its history of fires stays; fires not yet started never start).

    \b
    Example:
      loopml schedule remove weekly-score
    """
    _change("remove", name, as_json)


@schedule.command("run-now")
@click.argument("name")
@json_option
def run_now(name: str, as_json: bool) -> None:
    """Fire a schedule now, outside its cron (the scheduler starts it at its next tick).

    \b
    Example:
      loopml schedule run-now weekly-score
    """
    from loopml.scheduler import schedules as lib

    fire = lib.run_now(_writer(), name, by=_who())
    if as_json:
        print_json({"name": name, "fire": fire.id, "status": str(fire.status)})
        return
    console().print(
        f"Fire {fire.id} of {text(name)} queued; a running `loopml scheduler` (or server) "
        "starts it. See `loopml schedule show " + name + "`."
    )


@schedule.command("show")
@click.argument("name")
@click.option("--limit", type=int, default=20, show_default=True, help="Fires to show.")
@json_option
def show(name: str, limit: int, as_json: bool) -> None:
    """Show a schedule and its recent fires: status, run, duration, cost, error.

    \b
    Example:
      loopml schedule show weekly-score
    """
    from loopml.scheduler import schedules as lib

    c = _writer()
    lib.sync_config(c)
    info = lib.get(c, name)
    views = lib.fires(c, name, limit=limit)
    if as_json:
        print_json({**info.to_json(), "fires": [lib.fire_json(v) for v in views]})
        return
    r = info.record
    out = console()
    out.print(
        f"[bold]{text(r.name).plain}[/]: {text(r.pipeline).plain} on {r.cron} ({r.timezone}), "
        f"catch-up {r.catchup}, overlap {r.overlap}, retries {r.retries}, timeout "
        f"{fmt_duration(r.timeout_s) if r.timeout_s else 'none'}; "
        + ("paused" if r.paused else f"next fire {fmt_fire(info.next_fire, r.timezone)}")
    )
    if not views:
        out.print("No fires yet.")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("fire", "due", "kind", "status", "try", "run", "duration", "cost", "error"):
        table.add_column(column)
    currency = c.settings.prices.currency
    for v in views:
        f = v.fire
        table.add_row(
            str(f.id),
            fmt_time(f.due_at),
            f.kind,
            str(f.status),
            str(f.attempt),
            (f.run_id or "–")[:8],
            fmt_duration(v.run_duration_s),
            fmt_cost(v.run_cost, currency),
            text((f.error or "")[:80]),
        )
    out.print(table)


@click.command()
@click.option("--tick", type=float, default=1.0, show_default=True, help="Seconds between ticks.")
@click.option("--lease", type=float, default=30.0, show_default=True, help="Fire lease (s).")
@click.option(
    "--monitor-every",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds between evaluations of the monitors (loopml monitors).",
)
def scheduler(tick: float, lease: float, monitor_every: float) -> None:
    """Run the scheduler in the foreground until Ctrl-C or SIGTERM: fires the schedules and
    evaluates the monitors' closed windows.

    Any number of schedulers (and servers) may share one store: each fire runs once, and
    each monitor rule fires once per window.

    \b
    Example:
      loopml scheduler
    """
    import signal
    import threading

    from loopml.scheduler.loop import Scheduler

    stop = threading.Event()

    def ask_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    c = _writer()
    sched = Scheduler(c, tick_s=tick, lease_s=lease)
    from loopml.monitoring.engine import periodic

    sched.periodic.append(periodic(c, owner=sched.owner, every_s=monitor_every))
    click.echo(f"loopml scheduler {sched.owner} on {c.store_location}; Ctrl-C stops it.", err=True)
    started = time.monotonic()
    sched.run(stop)
    click.echo(f"Scheduler stopped after {time.monotonic() - started:.0f} s.", err=True)
