"""The run page in a real Chromium: the header, the DAG with each step's status, duration and
"cached", the steps table, metrics, the artifacts with a preview and a working download,
lineage links, and a failed run's error."""

from __future__ import annotations

from typing import Any

from ui_world import World

from conftest import shot, sign_in


def _open(page: Any, server: str, world: World, label: str) -> None:
    page.goto(f"{server}/runs/{world.runs[label]}")
    assert page.locator("h1").inner_text().startswith(label)


def test_the_run_page_shows_the_dag_steps_metrics_and_artifacts(
    page: Any, server: str, world: World
) -> None:
    _open(page, server, world, "train#2")
    head = page.locator(".run-head").inner_text()
    for word in ("started", "duration", "cost", "USD", "host", "executor", "python", "alpha"):
        assert word in head, word
    assert "0.05" in page.locator("table.params").inner_text()

    nodes = page.locator(".dag svg g.node")
    assert nodes.count() == 4
    assert [nodes.nth(i).get_attribute("data-step") for i in range(4)] == [
        "load",
        "split",
        "train",
        "evaluate",
    ]
    assert page.locator(".dag svg line").count() >= 3  # edges from lineage
    details = page.locator(".dag svg text.detail").all_text_contents()
    assert all("succeeded" in d for d in details)
    assert "cached" in details[0] and "cached" not in details[2]  # train ran again (alpha)

    steps = page.locator("table.steps")
    assert steps.locator(".badge-succeeded").count() == 4
    assert steps.locator(".badge-cached").count() == 2
    assert "parameter alpha" in steps.inner_text()  # why train ran

    metrics = page.locator("table.metrics").inner_text()
    assert "rmse" in metrics and "55.79" in metrics

    frame = page.locator(".artifact").first
    assert "load" in frame.locator(".artifact-head").inner_text()
    header = frame.locator(".preview-table thead").inner_text()
    for column in ("age", "bmi", "s6", "progression"):
        assert column in header, column
    assert frame.locator(".preview-table tbody tr").count() == 20
    assert "train#1" in frame.locator(".elsewhere").inner_text()  # the run that produced it

    lineage = page.locator("#lineage + .lineage")
    assert lineage.locator("a[href='/datasets/diabetes']").count() == 1
    assert lineage.locator("a[href='/evaluations/diabetes']").count() >= 1
    assert lineage.locator("a[href='/models/diabetes']").count() == 1
    shot(page, "run")


def test_an_artifact_downloads_with_its_bytes_and_safe_headers(
    page: Any, server: str, world: World
) -> None:
    _open(page, server, world, "train#2")
    link = page.locator(".artifact a.download").first.get_attribute("href")
    digest = link.split("/")[2]
    client = world.client()
    try:
        expected = client.artifacts.local_path(client.artifact(digest).digest).read_bytes()
    finally:
        client.close()
    answer = page.request.get(f"{server}{link}")
    assert answer.status == 200
    assert answer.body() == expected and expected[:4] == b"PAR1"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-disposition"].startswith("attachment; filename=")


def test_cached_steps_are_marked_cached(page: Any, server: str, world: World) -> None:
    _open(page, server, world, "train#3")
    details = page.locator(".dag svg text.detail").all_text_contents()
    assert len(details) == 4 and all("cached" in d for d in details)
    assert page.locator(".dag svg rect[stroke-dasharray]").count() == 4
    assert page.locator("table.steps .badge-cached").count() == 4
    assert "from cache: run train#1" in page.locator("table.steps").inner_text()


def test_a_failed_run_shows_its_error_and_traceback(page: Any, server: str, world: World) -> None:
    _open(page, server, world, "train#4")
    assert page.locator("h1 .badge-failed").count() == 1
    error = page.locator("pre.run-error").inner_text()
    assert "alpha" in error and "-1.0" in error
    assert (
        page.locator(".dag svg g.node[data-step='train'] text.detail")
        .text_content()
        .startswith("failed")
    )
    assert page.locator("table.steps .badge-skipped").count() == 1
    assert "Traceback" in page.locator("pre.traceback").inner_text()
    assert "No metrics" in page.locator("#metrics + p").inner_text()
    shot(page, "run-failed")


def test_an_unknown_run_is_a_404_page(page: Any, server: str, watch: Any) -> None:
    answer = page.goto(f"{server}/runs/train%2399")
    watch.console_errors.clear()  # Chromium logs the 404 of the page itself
    assert answer.status == 404
    assert "train#99" in page.locator("main").inner_text()


def test_with_auth_on_a_download_needs_a_signed_in_browser(
    page: Any, auth_server: str, world: World
) -> None:
    client = world.client()
    try:
        digest = client.links(run=world.runs["train#2"])[0].digest
    finally:
        client.close()
    answer = page.request.get(f"{auth_server}/artifacts/{digest}/download", max_redirects=0)
    assert answer.status == 303 and "/login" in answer.headers["location"]
    sign_in(page, auth_server, world.tokens["reader"], f"/runs/{world.runs['train#2']}")
    answer = page.request.get(f"{auth_server}/artifacts/{digest}/download")
    assert answer.status == 200 and answer.body()[:4] == b"PAR1"
