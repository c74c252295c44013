"""Running ``loopml server``: a safe bind, the API on uvicorn (one or N workers), the scheduler.

The socket is bound here, before uvicorn starts (``serving/server.py``'s ``bind``), so
``--port 0`` prints the real port and a taken port is a clear error. The address rule is
R21's: off loopback the server starts only with auth on, so nobody on the network reaches
the store without a token.

With one worker the app is built here, over one ``Client``. With ``workers > 1`` uvicorn
spawns worker processes that each import :func:`app_from_environment`; it reads the
project from the working directory and the environment (``LOOPML_STORE_URI`` …) like every
``loopml`` command, and whether auth is on from :data:`AUTH_ENV`, which the parent sets.

The scheduler (``loopml.scheduler.loop.Scheduler``) runs once, in the parent process, as a
background thread: started before the first request is served and stopped at shutdown.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError
from loopml.pipelines.discovery import project_on_path

if TYPE_CHECKING:
    from fastapi import FastAPI

    from loopml.tracking.client import Client

#: Set by the parent for its worker processes: "1" when every route needs a token.
AUTH_ENV = "LOOPML_SERVER_AUTH"
#: Set by the parent for its worker processes: the ``--allowed-host`` names, comma-separated.
HOSTS_ENV = "LOOPML_SERVER_ALLOWED_HOSTS"
SCHEDULER_MODULE = "loopml.scheduler.loop"
#: A DNS name or IPv4 address, or an IPv6 address without brackets (what ``Host`` names).
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,252})|[0-9a-f:]{2,39}")
log = logging.getLogger("loopml.server")


def check_server_bind(host: str, auth: bool) -> None:
    """Refuse a non-loopback address without auth: anyone on the network could call it."""
    from loopml.serving.asgi import is_loopback

    if not is_loopback(host) and not auth:
        raise InvalidParameterError(
            f"Refusing to serve the API on {host}: that address is reachable from other "
            "machines, and auth is off. Start with --auth (every route then needs a token) "
            "and give each client a token made with `loopml token create NAME --role "
            "writer`; or bind 127.0.0.1."
        )


def app_from_environment() -> FastAPI:
    """The app of one worker process (uvicorn's factory when ``--workers`` > 1)."""
    from loopml.server.app import create_app
    from loopml.tracking.client import Client

    client = Client()
    project_on_path(client.settings.root)
    hosts = [h for h in os.environ.get(HOSTS_ENV, "").split(",") if h]
    return create_app(
        client, auth=os.environ.get(AUTH_ENV) == "1", allowed_hosts=allowed(hosts or None)
    )


def allowed(hosts: Sequence[str] | None) -> list[str] | None:
    """The ``Host`` allow-list of ``--allowed-host`` names: those, plus the loopback names
    (local probes and the CLI keep working); None (the app's default) when none is given.

    Raises:
        InvalidParameterError: a name that is not a plain host name (no port, scheme, path).
    """
    if not hosts:
        return None
    from loopml.server.app import LOOPBACK_HOSTS

    names = []
    for host in hosts:
        name = host.strip().lower()
        if not HOST_NAME.fullmatch(name):
            raise InvalidParameterError(
                f"--allowed-host {host[:100]!r}: expected a host name such as "
                "loopml.team.example or 10.0.0.5 (no scheme, port or path)."
            )
        names.append(name)
    return [*names, *(h for h in LOOPBACK_HOSTS if h not in names)]


def start_scheduler(client: Client) -> Any:
    """The scheduler's background thread, started; None when this install has no scheduler."""
    if importlib.util.find_spec(SCHEDULER_MODULE) is None:
        return None
    from importlib import import_module

    scheduler = import_module(SCHEDULER_MODULE).Scheduler(client)
    from loopml.monitoring.engine import periodic

    scheduler.periodic.append(periodic(client, owner=scheduler.owner))
    scheduler.start()
    return scheduler


def serve_api(
    host: str,
    port: int,
    *,
    auth: bool = False,
    workers: int = 1,
    scheduler: bool = True,
    access_log: bool = False,
    on_started: Callable[[str], None] | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> None:
    """Serve the REST API on ``host:port`` until SIGINT/SIGTERM (``loopml server``).

    ``allowed_hosts``: the ``Host`` names answered besides the loopback names (others get
    400); default: any name with ``auth``, the loopback names only without.

    Raises:
        InvalidParameterError: a non-loopback ``host`` without ``auth``; a taken port;
            ``workers`` below 1; a bad name in ``allowed_hosts``.
    """
    from loopml.serving.server import bind, run
    from loopml.tracking.client import Client

    check_server_bind(host, auth)
    if workers < 1:
        raise InvalidParameterError(f"--workers: got {workers}; expected 1 or more.")
    hosts = allowed(allowed_hosts)
    client = Client().open()  # fails here, before binding, when the store cannot be opened
    project_on_path(client.settings.root)
    sock = bind(host, port)
    running = start_scheduler(client) if scheduler else None
    try:
        if workers == 1:
            from loopml.server.app import create_app

            app = create_app(client, auth=auth, allowed_hosts=hosts)
            run(app, sock, access_log=access_log, on_started=on_started)
        else:
            os.environ[HOSTS_ENV] = ",".join(hosts or ())
            _run_workers(sock, workers, auth=auth, access_log=access_log, on_started=on_started)
    finally:
        if running is not None:
            running.stop()
        sock.close()
        client.close()


def _run_workers(
    sock: Any,
    workers: int,
    *,
    auth: bool,
    access_log: bool,
    on_started: Callable[[str], None] | None,
) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ[AUTH_ENV] = "1" if auth else "0"
    config = uvicorn.Config(
        f"{__name__}:app_from_environment",
        factory=True,
        workers=workers,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        access_log=access_log,
        log_level="warning",
        timeout_graceful_shutdown=30,
        server_header=False,
    )
    if on_started is not None:
        # The socket already listens: connections queue until the workers accept them.
        address, port = sock.getsockname()[:2]
        on_started(f"http://{f'[{address}]' if ':' in address else address}:{port}")
    Multiprocess(config, sockets=[sock]).run()
