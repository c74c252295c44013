"""A loopback TCP proxy that can cut connections mid-transfer (RELIABILITY.md R11).

``CuttingProxy(host, port).start()`` listens on a free 127.0.0.1 port and forwards every
connection to ``host:port``. ``cut_after(direction, nbytes)`` lets ``nbytes`` more bytes
through in that direction (summed over all connections), then resets every open
connection and, until ``pass_all()``, every new one: the network stays down, so client
retries fail too. With ``once=True`` the proxy passes everything again right after the
cut, so a client's own retry can succeed. ``Direction.CLIENT_TO_SERVER`` cuts uploads,
``Direction.SERVER_TO_CLIENT`` cuts downloads.

A cut is abortive (TCP RST) on both sides, like a broken network and unlike a clean
close, which a server could mistake for the end of a request body. Bytes that were
forwarded but still sat in a kernel buffer when the RST went out are dropped, so at
most ``nbytes`` reach the far side.

One thread runs everything with non-blocking sockets and a selector, so ``stop()`` joins
exactly one thread and never leaves a pump blocked in ``recv``/``send``. Stdlib only;
this module deliberately does not import pytest.
"""

from __future__ import annotations

import contextlib
import enum
import selectors
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import cast

__all__ = ["CuttingProxy", "Direction"]

_CHUNK = 64 * 1024
_JOIN_TIMEOUT_S = 10.0


class Direction(enum.StrEnum):
    CLIENT_TO_SERVER = "client_to_server"  # requests, uploads
    SERVER_TO_CLIENT = "server_to_client"  # responses, downloads


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN: the peer sees a broken connection, not an end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@dataclass(eq=False)
class _Pipe:
    """One direction of one connection: bytes read from src wait in buf until sent to dst."""

    src: socket.socket
    dst: socket.socket
    direction: Direction
    buf: bytearray = field(default_factory=bytearray)
    eof: bool = False  # src sent FIN; pass it on once buf is flushed
    done: bool = False  # FIN passed on to dst


@dataclass(eq=False)
class _Connection:
    client: socket.socket
    server: socket.socket
    pipes: tuple[_Pipe, _Pipe] = field(init=False)

    def __post_init__(self) -> None:
        self.pipes = (
            _Pipe(self.client, self.server, Direction.CLIENT_TO_SERVER),
            _Pipe(self.server, self.client, Direction.SERVER_TO_CLIENT),
        )

    def interest(self, sock: socket.socket) -> int:
        """Selector events wanted on sock: read only while the pipe out of it is empty."""
        events = 0
        for pipe in self.pipes:
            if pipe.src is sock and not pipe.eof and not pipe.buf:
                events |= selectors.EVENT_READ
            if pipe.dst is sock and pipe.buf:
                events |= selectors.EVENT_WRITE
        return events


class CuttingProxy:
    """Forward 127.0.0.1:<port> to target_host:target_port; cut on demand. See the module doc.

    Example:
        >>> proxy = CuttingProxy("127.0.0.1", server_port).start()  # doctest: +SKIP
        >>> proxy.cut_after(Direction.SERVER_TO_CLIENT, 10_000_000)  # doctest: +SKIP
        >>> proxy.wait_cut(timeout=60)  # doctest: +SKIP
        >>> proxy.stop()  # doctest: +SKIP
    """

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1"):
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.port = 0
        self.connections = 0  # accepted so far
        self.connections_cut = 0  # reset by a cut (including those refused while cut)
        self._forwarded = {d: 0 for d in Direction}
        self._lock = threading.Lock()
        self._cut_event = threading.Event()
        self._budget: tuple[Direction, int, bool] | None = None  # (direction, left, once)
        self._down = False  # cut happened and persists: reset every connection
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._conns: set[_Connection] = set()

    # ------------------------------------------------------------------ public API

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.listen_host}:{self.port}"

    def start(self) -> CuttingProxy:
        if self._thread is not None:
            raise RuntimeError("CuttingProxy.start() was already called")
        listener = socket.create_server((self.listen_host, 0), backlog=128)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, name=f"CuttingProxy:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def cut_after(self, direction: Direction | str, nbytes: int, *, once: bool = False) -> None:
        """Let nbytes more bytes through in direction, then reset every connection.

        The cut persists (new connections are reset too) until pass_all(), unless once=True.
        """
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        with self._lock:
            self._budget = (Direction(direction), nbytes, once)
            self._down = False
            self._cut_event.clear()

    def pass_all(self) -> None:
        """Forget any armed or persisting cut: forward everything from now on."""
        with self._lock:
            self._budget = None
            self._down = False

    def wait_cut(self, timeout: float | None = None) -> bool:
        """Block until the armed cut has happened; False if timeout passed first."""
        return self._cut_event.wait(timeout)

    @property
    def cut_happened(self) -> bool:
        return self._cut_event.is_set()

    def bytes_forwarded(self, direction: Direction | str) -> int:
        """Bytes handed to the far side's socket in direction, since start()."""
        with self._lock:
            return self._forwarded[Direction(direction)]

    def stop(self) -> None:
        """Reset every connection, close the listener and join the proxy thread. Idempotent."""
        with self._lock:
            self._stopping = True
        self._wake()
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                raise RuntimeError(f"{self._thread.name} did not stop")
        for sock in (self._wake_r, self._wake_w, self._listener):
            if sock is not None:
                sock.close()

    def __enter__(self) -> CuttingProxy:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ proxy thread

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _run(self) -> None:
        assert self._listener is not None
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while True:
                with self._lock:
                    if self._stopping:
                        return
                for key, events in sel.select():
                    sock = cast(socket.socket, key.fileobj)
                    if sock is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    elif sock is self._listener:
                        self._accept(sel)
                    elif key.data in self._conns:  # not reset earlier in this same batch
                        self._service(sel, key.data, sock, events)
        finally:
            for conn in list(self._conns):
                self._drop(sel, conn, abort=True)
            sel.close()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        with self._lock:
            self.connections += 1
            down = self._down
        if down:
            with self._lock:
                self.connections_cut += 1
            _reset(client)
            return
        try:
            # Loopback connects complete at once (or are refused at once).
            server = socket.create_connection((self.target_host, self.target_port), timeout=10)
        except OSError:
            _reset(client)
            return
        for sock in (client, server):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(client, server)
        self._conns.add(conn)
        self._update(sel, conn)

    def _update(self, sel: selectors.BaseSelector, conn: _Connection) -> None:
        for sock in (conn.client, conn.server):
            events = conn.interest(sock)
            registered = sock in sel.get_map()
            if events and registered:
                sel.modify(sock, events, conn)
            elif events:
                sel.register(sock, events, conn)
            elif registered:
                sel.unregister(sock)

    def _drop(self, sel: selectors.BaseSelector, conn: _Connection, *, abort: bool) -> None:
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        for sock in (conn.client, conn.server):
            if sock in sel.get_map():
                sel.unregister(sock)
            if abort:
                _reset(sock)
            else:
                sock.close()

    def _admit(self, direction: Direction, n: int) -> tuple[int, bool]:
        """How many of n bytes may pass, and whether the cut fires after them."""
        with self._lock:
            if self._down:
                return 0, True
            if self._budget is None or self._budget[0] is not direction:
                return n, False
            _, left, once = self._budget
            if n < left:
                self._budget = (direction, left - n, once)
                return n, False
            self._budget = None
            self._down = not once
            return left, True

    def _service(
        self, sel: selectors.BaseSelector, conn: _Connection, sock: socket.socket, events: int
    ) -> None:
        try:
            if events & selectors.EVENT_READ:
                pipe = next(p for p in conn.pipes if p.src is sock)
                data = sock.recv(_CHUNK)
                if not data:
                    pipe.eof = True
                else:
                    allowed, cut = self._admit(pipe.direction, len(data))
                    pipe.buf += data[:allowed]
                    if cut:
                        with contextlib.suppress(OSError):
                            self._flush(pipe)  # the last allowed bytes, if dst takes them now
                        self._cut_all(sel)
                        return
            if events & selectors.EVENT_WRITE:
                for pipe in conn.pipes:
                    if pipe.dst is sock:
                        self._flush(pipe)
        except OSError:
            # One side broke: break the other side too, as a router would.
            self._drop(sel, conn, abort=True)
            return
        for pipe in conn.pipes:
            if pipe.eof and not pipe.buf and not pipe.done:
                pipe.done = True
                with contextlib.suppress(OSError):
                    pipe.dst.shutdown(socket.SHUT_WR)
        if all(p.done for p in conn.pipes):
            self._drop(sel, conn, abort=False)
        else:
            self._update(sel, conn)

    def _flush(self, pipe: _Pipe) -> None:
        """Send as much of pipe.buf as dst takes without blocking."""
        while pipe.buf:
            try:
                sent = pipe.dst.send(pipe.buf)
            except BlockingIOError:
                return
            del pipe.buf[:sent]
            with self._lock:
                self._forwarded[pipe.direction] += sent

    def _cut_all(self, sel: selectors.BaseSelector) -> None:
        with self._lock:
            self.connections_cut += len(self._conns)
        for conn in list(self._conns):
            self._drop(sel, conn, abort=True)
        self._cut_event.set()
