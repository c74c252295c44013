"""The pipelines pages in a real Chromium: the list, a pipeline's history (duration and cost
charts, a paginated runs table, its parameters) and its schedules with the writer's Pause,
Resume and Run now buttons (refused to a reader, on the page and on the server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ui_world import World

from conftest import shot, sign_in


def _labels(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("table.runs tbody td.run a").all_inner_texts()]


def _schedule(world: World, name: str) -> Any:
    from loopml.scheduler import schedules as lib

    client = world.client()
    try:
        return lib.get(client, name)
    finally:
        client.close()


def test_pipelines_list_shows_runs_status_duration_and_schedules(
    page: Any, server: str, world: World
) -> None:
    page.goto(f"{server}/pipelines")
    row = page.locator("table.pipelines tbody tr", has_text="train")
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "4"  # runs
    assert row.locator("td.run a").get_attribute("href") == f"/runs/{world.runs['train#4']}"
    assert row.locator(".badge-failed").count() == 1
    assert "75%" in row.inner_text()
    assert cells[7] == "1"  # schedules
    assert "nightly" in cells[8]
    shot(page, "pipelines")
    row.locator("a[href='/pipelines/train']").click()
    page.wait_for_url(f"{server}/pipelines/train")
    assert page.locator("h1").inner_text().startswith("train")


def test_pipeline_page_charts_parameters_schedule_and_paged_runs(
    page: Any, server: str, world: World
) -> None:
    page.goto(f"{server}/pipelines/train")
    charts = page.locator(".charts svg")
    assert charts.count() == 2
    assert "Duration" in (charts.nth(0).locator("title").first.text_content() or "")
    assert charts.nth(0).locator("circle.point").count() == 4  # a dot per run
    assert charts.nth(1).locator("circle.point").count() >= 3  # runs with a cost
    assert charts.nth(0).locator("a[href^='/runs/']").count() == 4  # each dot opens its run
    assert page.locator(".breadcrumb a[href='/pipelines']").count() == 1
    params = page.locator("table.params").inner_text()
    assert "alpha" in params
    section = page.locator("section.schedule[data-schedule='nightly']")
    text = section.inner_text()
    assert "0 2 * * *" in text and "UTC" in text and "enabled" in text
    assert "catch-up" in text and "overlap" in text
    assert section.locator("time").count() >= 1  # the next fire
    assert section.locator("form").count() == 0  # not signed in: no buttons
    assert sorted(_labels(page)) == sorted(world.runs)
    shot(page, "pipeline")

    page.goto(f"{server}/pipelines/train?limit=2")
    assert _labels(page) == ["train#4", "train#3"]
    page.click("nav.pager a[rel=next]")
    page.wait_for_url("**offset=2**")
    assert _labels(page) == ["train#2", "train#1"]
    assert page.locator("nav.pager a[rel=next]").count() == 0
    page.click("nav.pager a[rel=prev]")
    page.wait_for_url(lambda url: "offset=2" not in url)  # the new page, not the old one
    assert _labels(page) == ["train#4", "train#3"]


def test_an_unknown_pipeline_is_a_404_page(page: Any, server: str, watch: Any) -> None:
    response = page.goto(f"{server}/pipelines/no-such-pipeline")
    watch.console_errors.clear()  # Chromium logs the 404 status of the page
    assert response.status == 404
    assert "No pipeline 'no-such-pipeline'" in page.locator(".error-page").inner_text()
    assert "train" in page.locator(".error-page").inner_text()  # the known ones


def test_a_reader_sees_no_buttons_and_the_server_refuses_a_pause(
    page: Any, auth_server: str, world: World, watch: Any
) -> None:
    sign_in(page, auth_server, world.tokens["reader"], "/pipelines/train")
    section = page.locator("section.schedule[data-schedule='nightly']")
    assert section.count() == 1 and section.locator("button").count() == 0
    csrf = page.locator("form[action='/logout'] input[name=csrf]").get_attribute("value")
    answer = page.request.post(
        f"{auth_server}/pipelines/train/schedules/nightly/pause",
        form={"csrf": csrf},
        headers={"Origin": auth_server},
    )
    assert answer.status == 403
    assert "reader" in answer.text() and "writer" in answer.text()
    assert not _schedule(world, "nightly").record.paused


@pytest.fixture
def resumed(world: World) -> Iterator[None]:
    """Whatever the test does, ``nightly`` is running again afterwards (the world is shared)."""
    yield
    from loopml.scheduler import schedules as lib

    client = world.client()
    try:
        if lib.get(client, "nightly").record.paused:
            lib.resume(client, "nightly", by="tests")
    finally:
        client.close()


def test_a_writer_pauses_and_resumes_a_schedule(
    page: Any, auth_server: str, world: World, resumed: None
) -> None:
    sign_in(page, auth_server, world.tokens["writer"], "/pipelines/train")
    section = page.locator("section.schedule[data-schedule='nightly']")
    section.locator("button", has_text="Pause").click()
    page.wait_for_url("**done=paused**")
    assert "nightly" in page.locator(".notice").inner_text()
    section = page.locator("section.schedule[data-schedule='nightly']")
    assert section.locator(".badge-paused").count() == 1
    assert "none while paused" in section.inner_text()
    paused = _schedule(world, "nightly")
    assert paused.record.paused and paused.record.updated_by == "token:ui-writer"
    page.evaluate("window.scrollTo(0, 0)")  # the redirect scrolled to #schedules
    shot(page, "pipeline-paused")

    section.locator("button", has_text="Resume").click()
    page.wait_for_url("**done=resumed**")
    assert page.locator("section.schedule[data-schedule='nightly'] .badge-enabled").count() == 1
    assert not _schedule(world, "nightly").record.paused


def test_run_now_records_a_pending_manual_fire(page: Any, auth_server: str, world: World) -> None:
    from loopml.scheduler import schedules as lib

    client = world.client()
    record = lib.make_record("ui-run-now", pipeline="train", cron="0 3 * * *", by="tests")
    lib.add(client, record)  # a schedule of its own: its pending fire must not stay behind
    try:
        sign_in(page, auth_server, world.tokens["writer"], "/pipelines/train")
        section = page.locator("section.schedule[data-schedule='ui-run-now']")
        assert "No fires yet" in section.inner_text()
        section.locator("button", has_text="Run now").click()
        page.wait_for_url("**done=run-now**")
        assert "manual fire is pending" in page.locator(".notice").inner_text()
        fires = page.locator("section.schedule[data-schedule='ui-run-now'] table.fires tbody tr")
        assert fires.count() == 1
        assert "manual" in fires.inner_text() and "token:ui-writer" in fires.inner_text()
        assert fires.locator(".badge-pending").count() == 1
        stored = lib.fires(client, "ui-run-now")
        assert [(v.fire.kind, str(v.fire.status)) for v in stored] == [("manual", "pending")]
    finally:
        lib.remove(client, "ui-run-now", by="tests")  # its pending fire is recorded skipped
        client.close()


def test_a_pipeline_with_a_schedule_but_no_runs_has_its_page(
    page: Any, server: str, world: World
) -> None:
    from loopml.scheduler import schedules as lib

    client = world.client()
    record = lib.make_record("ui-ghost", pipeline="ghost", cron="*/5 * * * *", by="tests")
    lib.add(client, record, check=False)  # a pipeline the project does not define (yet)
    try:
        response = page.goto(f"{server}/pipelines/ghost")
        assert response.status == 200
        assert page.locator("section.schedule[data-schedule='ui-ghost']").count() == 1
        assert "loopml run ghost" in page.locator(".empty").last.inner_text()
        assert page.locator(".charts").count() == 0
        page.goto(f"{server}/pipelines")
        row = page.locator("table.pipelines tbody tr", has_text="ghost")
        assert "no runs yet" in row.inner_text()
    finally:
        lib.remove(client, "ui-ghost", by="tests")
        client.close()


def test_the_timeline_chart_escapes_labels_and_draws_one_point() -> None:
    from zoneinfo import ZoneInfo

    from loopml.tracking.timeline import Point, time_ticks, timeline_svg

    svg = timeline_svg(
        "<b>Duration</b>",
        [Point(1_700_000_000.0, 2.5, "<script>x</script>#1", "failed", "/runs/abc")],
        tz=ZoneInfo("Europe/Berlin"),
        ylabel="seconds",
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg
    assert svg.count('class="point"') == 1 and 'href="/runs/abc"' in svg
    assert "Europe/Berlin" in svg
    assert "no data" in timeline_svg("Cost", [], tz=ZoneInfo("UTC"))
    at, step = time_ticks(0.0, 7 * 86400.0, ZoneInfo("UTC"))
    assert step == 86400 * 2 and all(t % 86400 == 0 for t in at)
