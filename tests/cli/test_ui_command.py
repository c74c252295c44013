"""``loopml ui`` as a user starts it: a real process that prints its URL and serves the pages,
stops cleanly on SIGTERM, never fails for want of a browser, and moves past a taken port."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.cli import ui

URL = re.compile(r"loopml web UI on (http://127\.0\.0\.1:\d+)/")


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


@pytest.fixture
def started(project: Path) -> Iterator[tuple[str, subprocess.Popen[str], list[str]]]:
    """``loopml ui --no-browser --port 0`` running in the test's project: (url, process, lines)."""
    exe = Path(sys.executable).parent / "loopml"
    env = {
        **os.environ,
        "LOOPML_STORE_URI": "",
        "LOOPML_ARTIFACTS_URI": "",
    }
    env.pop("COLUMNS", None)
    env.pop("DISPLAY", None)
    env.pop("BROWSER", None)
    process = subprocess.Popen(
        [str(exe), "ui", "--no-browser", "--port", "0"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    url = None
    try:
        while url is None:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                pytest.fail(f"`loopml ui` printed no URL within 60 s: {seen}")
            seen.append(line)
            found = URL.search(line)
            url = found.group(1) if found else None
        while "Ctrl+C" not in seen[-1]:  # the lines after the URL come with it
            seen.append(lines.get(timeout=10))
        yield url, process, seen
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=10)  # it ends at the end of the output: then close the pipe
        if process.stdout is not None and not reader.is_alive():
            process.stdout.close()


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback
            return answer.status, answer.headers["content-type"], answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["content-type"], error.read().decode()


def test_ui_serves_the_pages_and_stops_cleanly(
    started: tuple[str, subprocess.Popen[str], list[str]],
) -> None:
    url, process, printed = started
    text = "".join(printed)
    assert "scheduler off" in text
    assert "Open that URL in a browser" in text  # --no-browser: nothing opened

    for path in ("/runs", "/datasets"):
        status, kind, body = _get(url + path)
        assert status == 200, (path, status, body[:500])
        assert kind.startswith("text/html") and "<nav" in body
    status, kind, body = _get(url + "/")
    assert kind.startswith("text/html") and 'href="/runs"' in body  # a page of the UI
    from loopml.server.ui.views import home

    # The home page is built on its own branch; until it lands "/" is the UI's 404 page.
    placeholder = (home.__doc__ or "").startswith("Placeholder")
    assert status == 200 or (placeholder and status == 404), body[:500]
    status, kind, _ = _get(url + "/api/runs")  # the REST API beside it, as `loopml server`
    assert status == 200 and kind.startswith("application/json")

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_a_taken_default_port_moves_to_the_next_free_one() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        chosen = ui._free_port("127.0.0.1", taken)
        assert chosen != taken and taken < chosen <= taken + ui.PORTS_TRIED
    assert ui._free_port("127.0.0.1", chosen) == chosen  # a free port is kept


def test_no_display_means_no_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert not ui._can_open_browser()  # a text browser would take over the terminal
    monkeypatch.setenv("DISPLAY", ":0")
    assert ui._can_open_browser()
