"""The home page in a real Chromium: each pipeline's last run (status, duration, cost) and next
fire, who holds each model's production alias, recent failures linked to their runs, and the
empty state of a new store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ui_world import World

from conftest import shot


def test_home_shows_the_last_run_next_fire_models_and_failures(
    page: Any, server: str, world: World
) -> None:
    page.goto(f"{server}/")
    cards = page.locator(".cards").inner_text()
    assert "runs in the last 24 h" in cards and "USD" in cards

    row = page.locator("table.pipelines tbody tr", has_text="train")
    assert row.locator("a[href='/pipelines/train']").count() == 1
    last = row.locator("td.run a")
    assert last.inner_text() == "train#4"  # the failed run is the latest
    assert last.get_attribute("href") == f"/runs/{world.runs['train#4']}"
    assert row.locator(".badge-failed").count() == 1
    cells = row.locator("td.num").all_inner_texts()
    assert any(c.endswith(" s") or c.endswith(" ms") for c in cells), cells  # duration
    assert any("USD" in c for c in cells), cells  # cost, in the currency of loopml.toml
    assert any("75%" in c and "3/4" in c for c in cells), cells  # success of the last runs
    assert "nightly" in row.inner_text()  # the next fire is the schedule's
    assert row.locator("time").count() == 2  # last start and next fire

    model = page.locator("table.models tbody tr", has_text="diabetes")
    assert model.locator("a[href='/models/diabetes']").count() >= 1
    assert "nobody" in model.inner_text()  # nobody promoted a version in the world

    failure = page.locator("table.failures tbody tr").first
    link = failure.locator("a")
    assert link.inner_text() == "train#4"
    assert link.get_attribute("href") == f"/runs/{world.runs['train#4']}"
    assert "alpha" in failure.inner_text()  # the first line of the run's error
    shot(page, "home")
    link.click()
    page.wait_for_url(f"{server}/runs/{world.runs['train#4']}")
    assert "train#4" in page.locator("h1").inner_text()


def test_an_empty_store_says_what_to_run(page: Any, tmp_path: Path) -> None:
    from loopml.config import load_settings
    from loopml.server.app import create_app
    from loopml.serving.server import serve_background
    from loopml.tracking.client import Client

    (tmp_path / "loopml.toml").write_text('[project]\nname = "empty"\n', encoding="utf-8")
    client = Client(load_settings(tmp_path)).open()
    try:
        with serve_background(create_app(client, auth=False)) as background:
            page.goto(f"{background.url}/")
            empty = page.locator(".home-empty").inner_text()
            assert "loopml init demo && cd demo && loopml run train" in empty
            assert page.locator(".cards").count() == 0
            assert page.locator("table.failures").count() == 0
    finally:
        client.close()
