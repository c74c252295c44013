"""R30, the web UI's part: with 10,000 runs in the store the runs page reads one page of 50,
its pager walks on, a filter with a sort on a metric puts the right run first, and the page
stays small. Figures (first paint …) are ``bench/ui.py``'s; nothing here is timed.

The runs are inserted in bulk, as ``bench/ui.py`` and ``bench/server.py`` do (the tracking
API would take minutes): ``bench/_tracking.py``'s ``_fill``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from _tracking import _fill  # noqa: E402

RUNS = 10_000
PAGE = 50
MAX_HTML_BYTES = 1_000_000
FILTER = "metrics.rmse < 3 and params.alpha >= 0.1"


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Any]]]:
    from loopml.server.app import create_app
    from loopml.serving.server import serve_background
    from loopml.tracking.client import Client

    root = tmp_path_factory.mktemp("r30-ui")
    client = Client(store_uri=f"sqlite:///{root / 'store.db'}", artifacts_uri=str(root / "blobs"))
    client.open()
    facts = _fill(client.metadata, RUNS)  # (rmse, started_at, id, alpha) of every run
    with serve_background(create_app(client)) as background:
        yield background.url, facts
    client.close()


def _rows(page: Any) -> list[str]:
    """The run ids of the page's rows, in order (each row links to /runs/ID)."""
    hrefs = page.locator("table.runs tbody td.run a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    return [h.rsplit("/", 1)[1] for h in hrefs]


def test_the_runs_page_reads_one_page_of_10000_runs(page: Any, many: tuple[str, list]) -> None:
    base, facts = many
    page.goto(f"{base}/runs")
    first = _rows(page)
    newest = [f[2] for f in sorted(facts, key=lambda f: -f[1])]
    assert first == newest[:PAGE]
    page.click("nav.pager a[rel=next]")
    page.wait_for_url("**/runs?*offset=*")
    assert parse_qs(urlsplit(page.url).query)["offset"] == [str(PAGE)]
    second = _rows(page)
    assert second == newest[PAGE : 2 * PAGE]
    page.click("nav.pager a[rel=prev]")
    page.wait_for_load_state()
    assert _rows(page) == first


def test_a_filter_sorted_by_a_metric_puts_the_right_run_first(
    page: Any, many: tuple[str, list]
) -> None:
    base, facts = many
    matches = [f for f in facts if f[0] < 3 and f[3] >= 0.1]
    page.goto(f"{base}/runs?filter={quote(FILTER)}&sort=metrics.rmse")
    rows = _rows(page)
    assert len(rows) == min(PAGE, len(matches))
    assert rows[0] == min(matches, key=lambda f: f[0])[2]
    assert rows == [f[2] for f in sorted(matches, key=lambda f: f[0])[:PAGE]]
    page.goto(f"{base}/runs?filter={quote(FILTER)}&sort={quote('metrics.rmse desc')}")
    assert _rows(page)[0] == max(matches, key=lambda f: f[0])[2]


def test_the_runs_page_stays_small(many: tuple[str, list]) -> None:
    base, _ = many
    for query in ("", f"?filter={quote(FILTER)}&sort=metrics.rmse", "?limit=500"):
        answer = httpx.get(f"{base}/runs{query}", timeout=60)
        assert answer.status_code == 200
        assert len(answer.content) < MAX_HTML_BYTES, (query, len(answer.content))
