"""Running the serving app on uvicorn: safe binding, one worker, a clean drain on shutdown.

The socket is bound here, before uvicorn starts, so the real port (``--port 0`` picks a free
one) is known and printed, and so a refused bind is a clear error rather than a log line.
uvicorn runs with httptools and uvloop when installed and without an access log (it costs
more than the prediction for small requests; ``access_log=True`` turns it on). SIGINT and
SIGTERM stop accepting, finish the requests in flight, then drain the prediction log.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from loopml.errors import InvalidParameterError


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without a token (anyone on the network could call it)."""
    from loopml.serving.asgi import is_loopback

    if not is_loopback(host) and not token:
        raise InvalidParameterError(
            f"Refusing to serve on {host}: that address is reachable from other machines, and "
            "no token is set. Set one with --token or the LOOPML_SERVE_TOKEN environment "
            "variable (clients then send 'Authorization: Bearer <token>'), or bind 127.0.0.1."
        )
    if token is not None and len(token) < 16:
        raise InvalidParameterError(
            f"The serving token is {len(token)} characters; use at least 16 random ones, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a clear error when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise InvalidParameterError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Pick another --port (0 picks "
            "a free one) or stop what holds it."
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(
    app: Any,
    sock: socket.socket,
    *,
    access_log: bool = False,
    on_started: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` on ``sock`` until SIGINT/SIGTERM; ``on_started(url)`` once it accepts."""
    import importlib.util

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(
        app,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        access_log=access_log,
        log_level="warning",
        timeout_graceful_shutdown=30,
        server_header=False,
    )
    server = _Server(config, on_started, f"http://{shown}:{port}")
    previous = None
    if threading.current_thread() is threading.main_thread():
        # After its graceful shutdown uvicorn raises the SIGTERM again under the handler that
        # was there before it started; with the default one the process dies of the signal
        # (exit -15/143) although every request was answered and the log drained. A drained
        # SIGTERM is the orderly stop (systemd, Docker, Kubernetes): exit 0.
        previous = signal.signal(signal.SIGTERM, _drained)
    try:
        server.run(sockets=[sock])
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _drained(signum: int, frame: Any) -> None:
    """The SIGTERM uvicorn raises again once it has drained: nothing is left to do."""


class _Server(uvicorn.Server):
    """uvicorn's server, telling the caller once it accepts connections."""

    def __init__(self, config: Any, on_started: Callable[[str], None] | None, url: str) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._on_started is not None and self.started:
            self._on_started(self._url)


class Background:
    """A server running on a thread of this process (see :func:`serve_background`)."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        import threading

        self.app = app
        self.url = ""
        self._sock = sock
        self._started = threading.Event()
        self._errors: list[BaseException] = []
        config = uvicorn.Config(app, access_log=False, log_level="warning")
        self._server = _Server(config, self._on_started, "")
        self._thread = threading.Thread(target=self._serve, name="loopml-serve", daemon=True)

    def _on_started(self, _: str) -> None:
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._started.set()

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # surfaced by start() instead of a silent dead thread
            self._errors.append(exc)
        finally:
            self._started.set()

    def start(self, timeout: float = 60.0) -> Background:
        self._thread.start()
        self._started.wait(timeout)
        if self._errors or not self.url:
            self._sock.close()
            raise RuntimeError(f"the server did not start: {self._errors or 'timed out'}")
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop accepting, finish requests in flight, drain the prediction log."""
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<loopml server {self.url or '(not started)'}>"


def serve_background(
    ref_or_app: Any, *, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> Background:
    """Serve a model (or an app from ``create_app``) on a thread: for notebooks and tests.

    Returns a started :class:`Background`; use it as a context manager, or call ``stop()``.
    ``options`` go to ``create_app`` (``runtime``, ``split``, ``token``, ...).

    Example:
        >>> with serve_background("churn@production") as server:   # doctest: +SKIP
        ...     print(server.url)                                   # http://127.0.0.1:PORT
    """
    check_bind(host, options.get("token"))
    if isinstance(ref_or_app, str):
        from loopml.serving.app import create_app

        app = create_app(ref_or_app, **options)
    else:
        app = ref_or_app
    return Background(app, bind(host, port)).start()
