"""The monitor pages in a real Chromium (issue 19): the list and the home page's panel, a
monitor's charts, windows and alerts with what their actions did, one window's drift
report, and the writer's Run now, Pause and Resume (refused to a reader, on the page and
on the server).

A store of this module's own (``monitored_store``): a classifier in production, 8 hourly
windows of logged predictions whose ``mean_radius`` moves from the fifth on. ``live`` is
evaluated before the tests, its alerts posted to a webhook receiver on loopback that
answers 200; ``fresh`` is left for Run now, and its receiver answers 404. One alert of
``live`` also carries a retrain run and a refused promotion, as the retrain and
auto-promote actions record them (running a retrain pipeline is the engine's tests' job).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conftest import shot, sign_in
from monitored_store import DRIFTED, HOURS, SHIFT_FROM, MonitorWorld, build_monitor_world, evaluate

PROMOTION = "cancer@2 not promoted to production: gate rmse <= 0.2 failed"


class Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint: ``/ok`` takes the message, anything else answers 404."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        ok = self.path == "/ok"
        if ok:
            Receiver.bodies.append(body)
        self.send_response(200 if ok else 404)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def mworld(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitorWorld]:
    from loopml.monitoring import add_monitor

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}"
    world = build_monitor_world(tmp_path_factory.mktemp("ui-monitors") / "p", monitors=())
    for name, path in (("live", "/ok"), ("fresh", "/refused")):
        add_monitor(
            name,
            model="cancer@production",
            window="1h",
            start=world.t0,
            notify=[hook + path],
            client=world.client,
        )
    evaluate(world, "live")
    store = world.client.metadata.monitors
    newest = store.alerts("live", limit=1)[0]
    train = world.client.search_runs("pipeline = 'train'", limit=1)[0]
    assert store.update_alert(
        newest.id,
        newest.owner or "",
        run_id=train.id,
        promotion={"promoted": False, "summary": PROMOTION},
    )
    yield world
    receiver.shutdown()
    receiver.server_close()
    world.client.close()


def _serve(world: MonitorWorld, *, auth: bool) -> Any:
    from loopml.server.app import create_app
    from loopml.serving.server import serve_background

    return serve_background(create_app(world.client, auth=auth))


@pytest.fixture(scope="module")
def open_server(mworld: MonitorWorld) -> Iterator[str]:
    """Loopback without auth: pages open, writes need a signed-in writer."""
    with _serve(mworld, auth=False) as background:
        yield background.url


@pytest.fixture(scope="module")
def auth_server(mworld: MonitorWorld) -> Iterator[str]:
    with _serve(mworld, auth=True) as background:
        yield background.url


def _rows(page: Any) -> Any:
    return page.locator("table.windows tbody tr")


def test_the_list_and_the_home_panel_show_each_monitor_status(
    page: Any, open_server: str, mworld: MonitorWorld
) -> None:
    page.goto(f"{open_server}/monitors")
    assert page.locator("nav a.active").inner_text() == "Monitors"
    live = page.locator("table.monitors tr[data-monitor='live']")
    cells = live.locator("td").all_inner_texts()
    assert cells[1] == "cancer@production" and cells[2] == "1h"
    assert cells[4] == "300"  # predictions in the last window
    assert live.locator(".badge-alert").count() == 1 and "feature_drift" in cells[5]
    expected = len(mworld.client.metadata.monitors.alerts("live", limit=1000))
    assert cells[6] == str(expected) and expected >= HOURS - SHIFT_FROM - 1
    assert live.locator("time").count() == 2  # last window, next window
    fresh = page.locator("table.monitors tr[data-monitor='fresh']")
    assert fresh.locator(".badge-waiting").count() == 1 and "none yet" in fresh.inner_text()
    shot(page, "monitors")

    page.goto(f"{open_server}/")
    panel = page.locator("section.monitors-panel")
    assert panel.locator("tr[data-monitor='live'] .badge-alert").count() == 1
    assert panel.locator("tr[data-monitor='fresh'] .badge-waiting").count() == 1
    panel.locator("a", has_text="live").click()
    page.wait_for_url(f"{open_server}/monitors/live")


def test_a_monitor_page_charts_windows_alerts_and_actions(
    page: Any, open_server: str, mworld: MonitorWorld
) -> None:
    page.goto(f"{open_server}/monitors/live")
    assert page.locator("h1 .badge-alert").count() == 1
    assert page.locator(".actions button").count() == 0  # not signed in: no buttons
    charts = page.locator(".charts .chart")
    assert [charts.nth(i).get_attribute("data-chart") for i in range(4)] == [
        "drift",
        "traffic",
        "performance",
        "mix",
    ]
    assert charts.locator("svg").count() == 4
    drift_chart = charts.nth(0).locator("svg").text_content() or ""
    assert "PSI" in drift_chart and f"psi {DRIFTED}" in drift_chart
    assert "live roc_auc" in (charts.nth(2).locator("svg").text_content() or "")

    rows = _rows(page)
    assert rows.count() == HOURS
    newest = rows.nth(0)
    assert newest.locator("td.drifted").inner_text().startswith(DRIFTED)
    assert newest.locator(".badge-alert", has_text="feature_drift").count() == 1
    oldest = rows.nth(HOURS - 1)
    assert oldest.locator(".badge-alert").count() == 0
    assert not oldest.locator("td.drifted").inner_text().startswith(DRIFTED)
    assert rows.nth(HOURS - 1).locator("td").nth(2).inner_text() == "300"  # labelled

    alerts = page.locator("table.alerts tbody tr")
    drift = alerts.filter(has_text="feature_drift")
    assert drift.count() == HOURS - SHIFT_FROM - 1  # "for 2 windows": from window 5 on
    assert f"psi('{DRIFTED}')" in drift.first.inner_text()
    first = alerts.first
    actions = first.locator("td.alert-actions")
    assert "webhook sent" in actions.inner_text() and PROMOTION in actions.inner_text()
    train = mworld.client.search_runs("pipeline = 'train'", limit=1)[0]
    assert actions.locator(f"a[href='/runs/{train.id}']").count() == 1
    assert Receiver.bodies, "the webhook receiver got no alert"
    shot(page, "monitor")

    page.click("a.newest-drift")
    page.wait_for_url("**/monitors/live/windows/**")
    report = page.locator(".loopml-drift table tbody tr")
    assert report.first.locator("td").first.inner_text().startswith(DRIFTED)
    assert report.first.locator("td.drifted").count() == 1
    assert page.locator("table.alerts").count() == 1  # this window's alerts
    assert page.locator(".breadcrumb a[href='/monitors/live']").count() == 1
    shot(page, "monitor-window")


def test_unknown_monitor_and_window_are_404_pages(
    page: Any, open_server: str, mworld: MonitorWorld, watch: Any
) -> None:
    answer = page.goto(f"{open_server}/monitors/lve")
    assert answer.status == 404
    assert "Did you mean 'live'?" in page.locator(".error-page").inner_text()
    answer = page.goto(f"{open_server}/monitors/live/windows/{int(mworld.t0) - 3600}")
    assert answer.status == 404
    text = page.locator(".error-page").inner_text()
    assert "no evaluated window starting at" in text and "/monitors/live" in text
    watch.console_errors.clear()  # Chromium logs the 404 status of the pages


def test_a_reader_sees_no_buttons_and_the_server_refuses_run_now(
    page: Any, auth_server: str, mworld: MonitorWorld
) -> None:
    sign_in(page, auth_server, mworld.tokens["reader"], "/monitors/fresh")
    assert page.locator(".actions button").count() == 0
    csrf = page.locator("form[action='/logout'] input[name=csrf]").get_attribute("value")
    for action in ("run", "pause"):
        answer = page.request.post(
            f"{auth_server}/monitors/fresh/{action}",
            form={"csrf": csrf},
            headers={"Origin": auth_server},
        )
        assert answer.status == 403, action
        assert "reader" in answer.text() and "writer" in answer.text()
    store = mworld.client.metadata.monitors
    assert store.windows("fresh") == [] and not store.get("fresh").paused


def test_a_writer_runs_now_then_pauses_and_resumes(
    page: Any, auth_server: str, mworld: MonitorWorld
) -> None:
    sign_in(page, auth_server, mworld.tokens["writer"], "/monitors/fresh")
    assert "loopml monitor run fresh" in page.locator(".empty").first.inner_text()
    started = time.monotonic()
    page.locator(".actions button", has_text="Run now").click()
    page.wait_for_url("**done=run**")
    took = time.monotonic() - started
    notice = page.locator(".notice").inner_text()
    assert "windows evaluated" in notice and "new alert" in notice
    assert _rows(page).count() >= HOURS  # one more if an hour closed meanwhile
    assert page.locator(".charts svg").count() == 4
    refused = page.locator("table.alerts td.alert-actions", has_text="webhook failed")
    assert refused.count() >= 1 and "HTTP 404" in refused.first.inner_text()
    print(f"\nRun now evaluated {HOURS} windows in {took:.1f} s")
    shot(page, "monitor-run-now")

    page.locator(".actions button", has_text="Pause").click()
    page.wait_for_url("**done=paused**")
    assert page.locator("h1 .badge-paused").count() == 1
    record = mworld.client.metadata.monitors.get("fresh")
    assert record.paused and record.updated_by == "token:mon-writer"
    page.locator(".actions button", has_text="Resume").click()
    page.wait_for_url("**done=resumed**")
    assert page.locator("h1 .badge-alert").count() == 1
    assert not mworld.client.metadata.monitors.get("fresh").paused
