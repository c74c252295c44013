"""The datasets pages in a real Chromium: every dataset with its versions, a version's stored
profile with its histograms, the drift between two versions, and a 404 page for a name that
does not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from ui_world import World

from conftest import shot

#: The columns of sklearn's diabetes frame, which the world's ``patients`` CSV holds.
DIABETES_COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "target"]


def _row(page: Any, name: str) -> Any:
    return page.locator("table.datasets tbody tr", has=page.locator(f"td.name a:text-is('{name}')"))


def test_datasets_page_lists_every_dataset_with_its_versions_and_readers(
    page: Any, server: str, world: World
) -> None:
    page.goto(f"{server}/datasets")
    names = page.locator("table.datasets td.name a").all_inner_texts()
    assert sorted(names) == ["diabetes", "patients"]

    patients = _row(page, "patients").locator("td")
    assert patients.nth(1).inner_text() == "2"  # versions
    assert "@2" in patients.nth(2).inner_text()  # the newest
    assert patients.nth(5).inner_text() == "482"  # rows of @2: 442 + 40
    assert "none" in patients.nth(8).inner_text()  # no run read it

    # The suite's data: every train run (cached or failed too) read it.
    readers = _row(page, "diabetes").locator("td").nth(8)
    linked = readers.locator("a").all_inner_texts()
    assert linked and set(linked) <= set(world.runs), linked
    href = readers.locator("a").first.get_attribute("href")
    assert href is not None and href.removeprefix("/runs/") in world.runs.values()
    shot(page, "datasets")

    page.click("td.name a:text-is('patients')")
    page.wait_for_url(f"{server}/datasets/patients")
    assert page.locator(".breadcrumb a").get_attribute("href") == "/datasets"


def test_dataset_page_shows_versions_and_the_profile_with_histograms(
    page: Any, server: str
) -> None:
    page.goto(f"{server}/datasets/patients")
    versions = page.locator("table.versions tbody tr")
    assert versions.count() == 2
    assert [
        t.strip() for t in page.locator("table.versions tbody td:first-child a").all_inner_texts()
    ] == ["@2", "@1"]
    assert "482" in versions.nth(0).inner_text() and "300" in versions.nth(1).inner_text()
    assert "not validated" in versions.nth(0).inner_text()

    assert "patients@2" in page.locator("h2", has_text="Profile").inner_text()
    profile = page.locator("table.loopml-profile")
    names = profile.locator("tbody .name").all_inner_texts()
    assert names == DIABETES_COLUMNS
    assert profile.locator("svg rect").count() > 50  # a histogram per numeric column
    assert "482 rows × 11 columns" in profile.locator("caption").inner_text()
    shot(page, "dataset")

    page.click("table.versions a:text-is('@1')")
    page.wait_for_url("**/datasets/patients?version=1")
    assert "300 rows × 11 columns" in page.locator("table.loopml-profile caption").inner_text()
    assert "patients@1" in page.locator("h2", has_text="Profile").inner_text()


def test_diff_of_two_versions_flags_the_shifted_column(page: Any, server: str) -> None:
    page.goto(f"{server}/datasets/patients")
    page.select_option("select[name=diff]", "1")
    page.select_option("select[name=against]", "2")
    page.click("form.diff-form button[type=submit]")
    # The server waits up to 15 s for the report; on a loaded machine the page may say it is
    # being computed and reload itself until it is ready, as a person would see it.
    page.wait_for_url("**/datasets/patients?diff=1&against=2", timeout=120_000)
    page.wait_for_selector(".loopml-drift", timeout=120_000)

    drift = page.locator(".loopml-drift")
    summary = drift.locator("p").first.inner_text()
    assert "1 of 11 columns drifted" in summary
    assert "reference 300 rows" in summary and "current 482 rows" in summary
    first = drift.locator("tbody tr").first  # worst first
    assert first.locator("td").first.inner_text().strip() == "bmi"
    assert first.locator("td.drifted").inner_text() == "drifted"
    assert drift.locator("td.drifted").count() == 1
    assert drift.locator("svg").count() >= 10  # both distributions of each column
    assert "bmi" in page.locator("strong.drift-bad").inner_text()
    shot(page, "dataset-diff")


def test_unknown_dataset_is_a_404_page(page: Any, server: str, watch: Any) -> None:
    response = page.goto(f"{server}/datasets/no-such-data")
    watch.console_errors.clear()  # Chromium logs the 404 status of the page itself
    assert response is not None and response.status == 404
    assert "no-such-data" in page.locator("main").inner_text()
    assert page.locator("nav a[href='/datasets']").count() == 1


def test_validations_folders_and_the_limits_of_a_diff(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store of its own: an empty list, a failed validation with what it found, a folder
    version (no profile, not comparable), a diff too large for the server, one still
    being computed."""
    import pandas as pd

    from loopml.data.datasets import add_dataset, validate_version
    from loopml.data.validate import infer_schema
    from loopml.server.app import create_app
    from loopml.server.ui.views import datasets
    from loopml.serving.server import serve_background
    from loopml.tracking.client import Client

    client = Client().open()
    with (
        serve_background(create_app(client)) as background,
        httpx.Client(base_url=background.url, timeout=120) as http,
    ):
        assert "loopml data add FILE --name NAME" in http.get("/datasets").text

        first = pd.DataFrame({"x": range(100), "kind": ["a", "b"] * 50})
        add_dataset(first, name="t", client=client)
        add_dataset(first.assign(x=first.x * 10), name="t", client=client)
        schema = infer_schema(first)
        validate_version("t@2", schema, client=client, raise_on_error=False)
        (project / "pics").mkdir()
        (project / "pics" / "a.txt").write_text("<b>not a table</b>")
        add_dataset(project / "pics", name="t", client=client)

        page = http.get("/datasets/t", params={"version": 2}).text
        assert "failed" in page and "column &#39;x&#39;: range" in page
        folder = http.get("/datasets/t").text  # @3, the newest, is a folder
        assert "No profile is stored for t@3" in folder and "not a table" in folder
        refused = http.get("/datasets/t", params={"diff": 1, "against": 3})
        assert refused.status_code == 400 and "t@3 is not one" in refused.text

        monkeypatch.setattr(datasets, "MAX_DIFF_BYTES", 10)
        large = http.get("/datasets/t", params={"diff": 1, "against": 2})
        assert large.status_code == 413
        assert "loopml data diff t@1 t@2 --html drift.html" in large.text

        monkeypatch.setattr(datasets, "MAX_DIFF_BYTES", 10**9)
        monkeypatch.setattr(datasets, "DIFF_WAIT_S", 0.0)
        pending = http.get("/datasets/t", params={"diff": 2, "against": 1})
        assert pending.status_code == 202 and "Computing the drift report" in pending.text
        assert '<meta http-equiv="refresh"' in pending.text
        monkeypatch.setattr(datasets, "DIFF_WAIT_S", 60.0)
        ready = http.get("/datasets/t", params={"diff": 2, "against": 1})
        assert ready.status_code == 200 and "1 of 2 columns drifted" in ready.text
    client.close()
