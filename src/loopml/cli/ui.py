"""``loopml ui``: the web UI of this project's store, opened in the browser.

The same server as ``loopml server`` (``loopml.server.run.serve_api``: the pages, the REST
API under ``/api``, the same auth rules), on loopback and without the scheduler unless
``--scheduler`` is given: a person looking at their runs should not fire schedules by doing
so. Opening the browser is a convenience and never a reason to fail: it is skipped with
``--no-browser``, without a display (an SSH session: a text browser would take over the
terminal) and when Python knows no browser.
"""

from __future__ import annotations

import os
import sys
import threading

import click

from loopml.cli.output import console, esc

DEFAULT_PORT = 8765  # the port of `loopml server`
#: How many ports after the default are tried when it is taken.
PORTS_TRIED = 20


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback needs --auth.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help=f"Port to listen on (default {DEFAULT_PORT}, or the next free one when it is taken; "
    "0: any free port). A port given here that is taken is an error.",
)
@click.option(
    "--auth",
    is_flag=True,
    help="Require a signed-in token for every page (sign in at /login), also on loopback.",
)
@click.option(
    "--scheduler",
    "with_scheduler",
    is_flag=True,
    help="Also run the scheduler, as `loopml server` does (off by default here).",
)
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser.")
def ui(host: str, port: int | None, auth: bool, with_scheduler: bool, no_browser: bool) -> None:
    """Open the web UI of this project's store in your browser.

    Serves the pages (runs, pipelines, models, evaluations, datasets) and the REST API
    under /api, like `loopml server`, until Ctrl+C. Pages read without a token on
    loopback; buttons that change something (promote, pause a schedule) need a signed-in
    token with the writer role: make one with `loopml token create NAME --role writer`
    and sign in at /login. The browser is opened unless --no-browser is given or there is
    no display; the URL is always printed.

    \b
    Examples:
      loopml ui
      loopml ui --no-browser --port 0
      loopml ui --auth --scheduler
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(
            f"loopml ui needs the server extra ({exc.name} is not installed): "
            "pip install 'loopml[server]'."
        ) from None
    from loopml.server.run import check_server_bind, serve_api

    check_server_bind(host, auth)
    chosen = port if port is not None else _free_port(host, DEFAULT_PORT)
    if port is None and chosen != DEFAULT_PORT:
        console().print(f"Port {DEFAULT_PORT} is taken: using {chosen} instead.")

    def started(url: str) -> None:
        out = console()
        out.print(f"loopml web UI on {esc(url)}/")
        out.print(
            "every page needs a signed-in token (--auth)"
            if auth
            else "pages open on loopback; buttons that change things need a writer token"
        )
        out.print(
            "scheduler on: `loopml schedules` lists what it fires"
            if with_scheduler
            else "scheduler off (--scheduler runs it)"
        )
        opened = not no_browser and _can_open_browser()
        out.print(
            "Opening it in your browser; Ctrl+C stops the server."
            if opened
            else "Open that URL in a browser; Ctrl+C stops the server."
        )
        out.file.flush()
        if opened:
            # webbrowser may wait for the browser process: never hold up the server for it.
            threading.Thread(
                target=_open, args=(url + "/",), name="loopml-ui-browser", daemon=True
            ).start()

    serve_api(host, chosen, auth=auth, scheduler=with_scheduler, on_started=started)


def _free_port(host: str, first: int) -> int:
    """``first``, or the next port after it that nothing listens on (``first`` if none is)."""
    from loopml.errors import InvalidParameterError
    from loopml.serving.server import bind

    for candidate in range(first, min(first + PORTS_TRIED, 65536)):
        try:
            bind(host, candidate).close()
        except InvalidParameterError:
            continue
        return candidate
    return first  # all taken: serve_api reports the default port as taken


def _can_open_browser() -> bool:
    """Whether a graphical browser can be opened from here (never a text one in this terminal)."""
    if os.environ.get("BROWSER"):
        return True  # the user chose one
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open(url: str) -> None:
    import webbrowser

    try:
        webbrowser.open(url, new=2)
    except Exception:  # noqa: BLE001 - a browser that cannot start must not stop the UI
        pass
