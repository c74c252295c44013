"""The runs page in a real Chromium: every run listed, the filter language, sorting by a metric,
times in the browser's zone, and a shareable URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ui_world import World

from conftest import shot


def _labels(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("table.runs tbody td:nth-child(2) a").all_inner_texts()]


def test_runs_page_lists_every_run_with_status_duration_cost_and_metrics(
    page: Any, server: str, world: World
) -> None:
    page.goto(f"{server}/runs")
    assert sorted(_labels(page)) == sorted(world.runs)
    table = page.locator("table.runs")
    assert table.locator(".badge-failed").count() == 1
    assert table.locator(".badge-succeeded").count() == 3
    header = table.locator("thead").inner_text()
    assert "alpha" in header and "rmse" in header
    assert "USD" in table.inner_text()  # the currency of loopml.toml's [cost]
    shot(page, "runs")


def test_filter_and_sort_are_in_the_url_and_survive_a_reload(
    page: Any, server: str, world: World
) -> None:
    page.goto(f"{server}/runs")
    page.fill("input[name=filter]", "params.alpha = '0.5' and status = 'succeeded'")
    page.click("form.filter button[type=submit]")
    page.wait_for_url("**/runs?filter=*")
    assert sorted(_labels(page)) == ["train#1", "train#3"]
    shared = page.url
    page.goto(shared)  # the same URL, opened by someone else, shows the same runs
    assert sorted(_labels(page)) == ["train#1", "train#3"]

    succeeded = quote("status = 'succeeded'")
    page.goto(f"{server}/runs?filter={succeeded}&sort=metrics.rmse&columns=metrics.rmse")
    rmse = [float(v) for v in page.locator("table.runs tbody td.num:last-child").all_inner_texts()]
    assert rmse == sorted(rmse) and len(rmse) == 3
    page.click("th a.sorted")  # the sorted column again: descending
    rmse_desc = [
        float(v) for v in page.locator("table.runs tbody td.num:last-child").all_inner_texts()
    ]
    assert rmse_desc == sorted(rmse, reverse=True)


def test_a_bad_filter_is_explained_on_the_page(page: Any, server: str, watch: Any) -> None:
    page.goto(f"{server}/runs?filter={quote('bogus > 1')}")
    watch.console_errors.clear()  # the 400 status of the page itself is logged by Chromium
    problem = page.locator(".problem").inner_text()
    assert "bogus" in problem and "metrics.bogus" in problem


def test_times_show_in_the_browsers_time_zone(page: Any, server: str) -> None:
    page.goto(f"{server}/runs")
    first = page.locator("table.runs time").first.inner_text()
    assert "CET" in first or "CEST" in first or "GMT+1" in first or "GMT+2" in first, first
    # From now on the server writes them in that zone too (the cookie ui.js set): the HTML
    # itself, before any script runs, says CET/CEST.
    html = page.request.get(f"{server}/runs").text()
    assert ">Europe/Berlin<" in html
    stamp = html.split("<time", 1)[1].split("</time>", 1)[0]
    assert stamp.endswith(("CET", "CEST")), stamp
