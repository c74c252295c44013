"""Shared by the write-route tests: a real API server on loopback, tokens, `loopml server`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from loopml.server.app import create_app
from loopml.serving.server import Background, serve_background
from loopml.tracking.client import Client

LOOPML = str(Path(sys.executable).parent / "loopml")


def token(client: Client, name: str, role: str) -> dict[str, str]:
    """The Authorization header of a new token ``name`` with ``role``."""
    _, secret = client.metadata.tokens.create(name, role, by="tests")
    return {"Authorization": f"Bearer {secret}"}


@contextmanager
def api(*, auth: bool = False) -> Iterator[tuple[Background, Client]]:
    """The REST API on uvicorn on 127.0.0.1 (a thread of this process), over a fresh client."""
    client = Client().open()
    server = serve_background(create_app(client, auth=auth))
    try:
        yield server, client
    finally:
        server.stop()
        client.close()


def wait_for(check: Any, timeout: float = 60.0, every: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {check}")
        time.sleep(every)


class CliServer:
    """A real ``loopml server`` process (its own process group)."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.args, self.cwd = args, cwd
        self.env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(
            [LOOPML, "server", *args],
            cwd=cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.url = ""
        self.output: list[str] = []
        self._drainer: threading.Thread | None = None

    def started(self, timeout: float = 60.0) -> CliServer:
        """Read the printed URL, then wait until /health answers."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        seen = []
        for line in self.proc.stdout:
            seen.append(line)
            found = re.search(r"(http://[\d.]+:\d+)/api", line)
            if found:
                self.url = found.group(1)
                break
            if time.monotonic() > deadline:
                break
        assert self.url, f"loopml server printed no URL: {''.join(seen)}"
        self.output = seen
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()  # a full pipe would block the server
        wait_for(self._healthy, timeout=max(1.0, deadline - time.monotonic()))
        return self

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL the whole process group (workers too)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        self._close()

    def _close(self) -> None:
        if self._drainer is not None:
            self._drainer.join(10)
            self._drainer = None
        if self.proc.stdout is not None and self._drainer is None:
            self.proc.stdout.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()
        return self.proc.returncode
