"""``loopml server``: the REST API and the scheduler over this project's store."""

from __future__ import annotations

import click

from loopml.cli.output import console, esc


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port; the URL is printed).",
)
@click.option(
    "--auth",
    is_flag=True,
    help="Require a token on every route but /health, also on loopback (needed off loopback).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="uvicorn worker processes serving the API (the scheduler runs once, in the parent).",
)
@click.option("--no-scheduler", is_flag=True, help="Serve the API only; fire no schedules.")
@click.option("--access-log", is_flag=True, help="Log every request (costs throughput).")
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A Host name the server answers to (repeatable), e.g. the name a proxy forwards; "
    "others get 400. Loopback names are always answered. Default: any name with --auth, "
    "loopback names only without.",
)
def server(
    host: str,
    port: int,
    auth: bool,
    workers: int,
    no_scheduler: bool,
    access_log: bool,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Serve the REST API (/api) and run the scheduler, over this project's store.

    Reads need no token on a loopback server started without --auth; writes always need
    one (`Authorization: Bearer <token>`; make one with `loopml token create NAME --role
    writer`). Any address other than loopback needs --auth. The API's interactive docs are
    at /api/docs, behind the same auth.

    \b
    Examples:
      loopml server
      loopml server --port 0 --no-scheduler
      loopml server --host 0.0.0.0 --auth --workers 4
      loopml server --host 0.0.0.0 --auth --allowed-host loopml.team.example
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(
            f"loopml server needs the serve extra ({exc.name} is not installed): "
            "pip install 'loopml[server]'."
        ) from None
    from loopml.server.run import check_server_bind, serve_api

    check_server_bind(host, auth)

    def started(url: str) -> None:
        mode = "tokens required" if auth else "reads open on loopback, writes need a token"
        workers_text = f", {workers} workers" if workers > 1 else ""
        console().print(
            f"loopml API on {esc(url)}/api  ({mode}{workers_text}; docs at {esc(url)}/api/docs)"
        )
        console().print(
            "scheduler off (--no-scheduler)"
            if no_scheduler
            else "scheduler on: `loopml schedules` lists what it fires"
        )
        console().file.flush()

    serve_api(
        host,
        port,
        auth=auth,
        workers=workers,
        scheduler=not no_scheduler,
        access_log=access_log,
        on_started=started,
        allowed_hosts=allowed_hosts or None,
    )
