"""The compare page in a real Chromium: runs picked on /runs side by side, the rows that differ
highlighted (all rows on request), their metrics overlaid on one chart per key; fewer than two
runs is explained."""

from __future__ import annotations

from typing import Any

from ui_world import World

from conftest import shot


def _row(page: Any, name: str) -> Any:
    return (
        page.locator("table.compare tbody tr").filter(has=page.locator("th", has_text=name)).first
    )


def test_runs_picked_on_the_runs_page_are_compared_side_by_side(
    page: Any, server: str, world: World
) -> None:
    page.goto(f"{server}/runs")
    page.check("input[aria-label='select train#1']")
    page.check("input[aria-label='select train#2']")
    page.click("form[data-compare] button[type=submit]")  # "Compare 2 runs"
    page.wait_for_url("**/runs/compare?*")
    heads = page.locator("table.compare thead").inner_text()
    assert "train#1" in heads and "train#2" in heads and "train#3" not in heads

    alpha = _row(page, "params.alpha")
    assert alpha.get_attribute("class") == "diff-changed"
    cells = alpha.locator("td").all_inner_texts()
    assert [c.strip() for c in cells] == ["0.5", "0.05"]
    assert _row(page, "params.seed").count() == 0  # equal rows are hidden by default

    chart = page.locator(".chart svg").filter(has=page.locator("text", has_text="rmse")).first
    series = chart.locator("g.series")
    assert series.count() == 2
    assert [series.nth(i).get_attribute("data-series") for i in range(2)] == [
        "train#1",
        "train#2",
    ]
    shot(page, "compare")

    page.click("a.show-all")
    page.wait_for_url("**all=1*")
    seed = _row(page, "params.seed")
    assert seed.count() == 1 and seed.get_attribute("class") is None
    assert _row(page, "params.alpha").get_attribute("class") == "diff-changed"


def test_fewer_than_two_runs_is_a_400_page_that_says_how_to_pick(
    page: Any, server: str, world: World, watch: Any
) -> None:
    answer = page.goto(f"{server}/runs/compare?run={world.runs['train#1']}")
    watch.console_errors.clear()  # Chromium logs the 400 of the page itself
    assert answer.status == 400
    problem = page.locator(".problem").inner_text()
    assert "at least 2 runs" in problem and "runs page" in problem
    assert page.locator("main a[href='/runs']").count() >= 1
