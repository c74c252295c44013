"""Fixtures of the web UI tests: the example project's store, a server over it, and a real
headless Chromium (the system's ``/usr/bin/chromium``, driven by Playwright) that may talk to
127.0.0.1 only — a request anywhere else fails the test, which proves the UI works offline.

``page`` fails its test when a JavaScript dialog opens (R22: a stored payload that runs would
usually call ``alert``), when the page logs a console error, or when it asks for any URL
off loopback. ``shot(page, name)`` saves a full-page screenshot under
``build/test-artifacts/ui/`` for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from ui_world import World, artifacts_dir, build_world, forget_project

CHROMIUM = os.environ.get("LOOPML_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: The zone the browser claims; pages must show times in it (not the server's UTC).
BROWSER_TZ = "Europe/Berlin"


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("ui-world"))


@contextmanager
def serve(world: World, *, auth: bool = False) -> Iterator[Any]:
    """A started server (``.url``) over the world's store, with its pipelines importable
    while it runs (and forgotten after: later tests in this process must not find them)."""
    from loopml.pipelines.discovery import project_on_path
    from loopml.server.app import create_app
    from loopml.serving.server import serve_background

    project_on_path(world.root)
    try:
        with serve_background(create_app(world.client(), auth=auth)) as background:
            yield background
    finally:
        forget_project(world.root)


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[str]:
    """The UI on loopback without auth (reads open, writes need a signed-in writer)."""
    with serve(world) as background:
        yield background.url


@pytest.fixture(scope="module")
def auth_server(world: World) -> Iterator[str]:
    """The same store with auth on: every page needs a signed-in token."""
    with serve(world, auth=True) as background:
        yield background.url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make test` (it installs it).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class Watch:
    """What a page did that a test must not accept: dialogs, console errors, off-host requests."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []
        self.offhost: list[str] = []

    def problems(self) -> list[str]:
        return (
            [f"dialog: {d}" for d in self.dialogs]
            + [f"console error: {e}" for e in self.console_errors]
            + [f"request off loopback: {u}" for u in self.offhost]
        )


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Any, watch: Watch) -> Iterator[Any]:
    context = browser.new_context(
        timezone_id=BROWSER_TZ, viewport={"width": 1360, "height": 900}, locale="en-GB"
    )

    def route(r: Any) -> None:
        from urllib.parse import urlsplit

        if urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            watch.offhost.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    tab = context.new_page()

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.on(
        "console",
        lambda m: watch.console_errors.append(m.text) if m.type == "error" else None,
    )
    yield tab
    context.close()
    assert not watch.problems(), "\n".join(watch.problems())


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot ``build/test-artifacts/ui/NAME.png``; returns its path."""
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, base: str, token: str, next: str = "/") -> None:
    """Sign in through the login form, as a person would."""
    page.goto(f"{base}/login?next={next}")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{next}")
