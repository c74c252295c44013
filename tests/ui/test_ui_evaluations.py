"""The evaluations pages in a real Chromium: the suites, a suite's leaderboard with its
confidence intervals, and one evaluation's report with its charts."""

from __future__ import annotations

from typing import Any

from ui_world import World

from conftest import shot

SUITE = "diabetes"


def _evaluations(world: World) -> list[Any]:
    client = world.client()
    try:
        return list(client.evaluations(client.suite_version(SUITE)))
    finally:
        client.close()


def test_evaluations_page_lists_the_suites(page: Any, server: str, world: World) -> None:
    page.goto(f"{server}/evaluations")
    row = page.locator("table.suites tbody tr", has_text=SUITE)
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    assert cells[0].startswith(SUITE)
    assert cells[1] == "1"  # versions
    assert cells[2] == "regression" and cells[3] == "progression"
    assert cells[6] == "110"  # a quarter of the 442 patients
    assert cells[7] == str(len(_evaluations(world)))
    shot(page, "evaluations")
    row.locator(f"a[href='/evaluations/{SUITE}']").click()
    page.wait_for_url(f"{server}/evaluations/{SUITE}")


def test_suite_page_shows_the_leaderboard_with_intervals_and_the_report_charts(
    page: Any, server: str, world: World
) -> None:
    page.goto(f"{server}/evaluations/{SUITE}")
    assert page.locator("h1").inner_text() == f"Suite {SUITE}@1"
    board = page.locator("table.leaderboard tbody tr")
    assert board.count() == len({e.model_digest for e in _evaluations(world)})
    leader = board.first.locator("td").all_inner_texts()
    assert leader[0] == "1" and "train#2" in leader[2]  # alpha=0.05: the lower rmse
    low, high = (float(x) for x in leader[5].split(" – "))
    assert low < float(leader[4]) < high
    assert board.first.locator(f"a[href='/runs/{world.runs['train#2']}']").count() == 1
    assert page.locator(".leaderboard-chart svg").count() == 1
    # The leader's report is shown by default: metrics with intervals, and the task's charts.
    report = page.locator(".eval-report")
    assert "train#2" in page.locator("#report").inner_text()
    assert "rmse" in report.locator("table").first.inner_text()
    assert report.locator("svg").count() >= 2  # predicted vs actual, residuals
    shot(page, "evaluation")

    # Another evaluation's report, from its leaderboard row; the URL can be shared.
    board.nth(1).locator("a[href*='evaluation=']").click()
    page.wait_for_url(f"{server}/evaluations/{SUITE}?evaluation=*")
    assert "train#1" in page.locator("#report").inner_text()
    assert page.locator("table.leaderboard tr.selected").inner_text().startswith("2")
    page.goto(page.url)
    assert "train#1" in page.locator("#report").inner_text()


def test_rank_by_another_metric_and_a_metric_the_suite_lacks(
    page: Any, server: str, watch: Any
) -> None:
    page.goto(f"{server}/evaluations/{SUITE}")
    page.click(".metric-pick a:text-is('r2')")
    page.wait_for_url(f"{server}/evaluations/{SUITE}?metric=r2")
    assert "higher is better" in page.locator("main").inner_text()
    assert "r2" in page.locator("table.leaderboard thead").inner_text()
    page.goto(f"{server}/evaluations/{SUITE}?metric=bogus")
    watch.console_errors.clear()  # the 400 status of the page itself is logged by Chromium
    assert "bogus" in page.locator(".problem").inner_text()


def test_unknown_suite_and_evaluation_are_404_pages(page: Any, server: str, watch: Any) -> None:
    page.goto(f"{server}/evaluations/no-such-suite")
    assert "404" in page.locator("h1").inner_text()
    page.goto(f"{server}/evaluations/{SUITE}?evaluation=999999")
    assert "404" in page.locator("h1").inner_text()
    watch.console_errors.clear()
