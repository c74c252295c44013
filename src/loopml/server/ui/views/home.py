"""``/``: is the model running, did it run through last time, how long, how much?

Cards with totals, each pipeline's last run and next scheduled fire, who holds each
model's aliases, the monitors' status, and the latest failures. Fast with 100,000 runs: the run total comes from
one pass over an index (``Client.run_counts``); the windows (24 h, 7 days, 30 days) are
``search_runs`` filters on the start time, read up to ``CAP`` runs (shown as "1,000+"
beyond); each pipeline reads its latest ``RECENT`` runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from loopml.server.ui import page_router
from loopml.server.ui.render import render, url
from loopml.server.ui.views.pipelines import RECENT, percent, summaries

if TYPE_CHECKING:
    from starlette.responses import HTMLResponse

    from loopml.store.records import RunRecord
    from loopml.tracking.client import Client

router = page_router()

CAP = 1000  # runs read for a card at most
FAILURES = 5
MAX_MODELS = 50
MAX_MONITORS = 10  # the home page's panel: the full list is /monitors
DAY = 86400.0
FAILED = "status in ('failed', 'crashed')"


@dataclass(frozen=True)
class Card:
    figure: str
    label: str
    link: str = ""


def _count(found: list[RunRecord]) -> str:
    return f"{CAP:,}+" if len(found) > CAP else f"{len(found):,}"


def cards(client: Client, total: int, now: float) -> list[Card]:
    """Runs (all, last 24 h), failures in 7 days and cost in 30 days."""
    from loopml.tracking.cost import format_cost

    currency = client.settings.prices.currency
    month = client.search_runs(f"started >= {now - 30 * DAY!r}", limit=CAP + 1)
    # Newest first: the 24 h runs are all in ``month`` unless it was cut inside the 24 h.
    day = [r for r in month[:CAP] if r.started_at >= now - DAY]
    cut_in_day = len(month) > CAP and month[CAP - 1].started_at >= now - DAY
    failures = client.search_runs(f"{FAILED} and started >= {now - 7 * DAY!r}", limit=CAP + 1)
    spent = format_cost(sum(r.cost for r in month[:CAP] if r.cost is not None), currency)
    return [
        Card(f"{total:,}", "runs", "/runs"),
        Card(f"{CAP:,}+" if cut_in_day else f"{len(day):,}", "runs in the last 24 h"),
        Card(_count(failures), "failed or crashed in the last 7 days", url("/runs", filter=FAILED)),
        Card(
            ("≥ " if len(month) > CAP else "") + spent,
            "cost in the last 30 days" + (f" (latest {CAP:,} runs)" if len(month) > CAP else ""),
        ),
    ]


@dataclass(frozen=True)
class ModelRow:
    name: str
    latest: int
    aliases: dict[str, int]

    @property
    def production(self) -> int | None:
        return self.aliases.get("production")

    @property
    def others(self) -> list[tuple[str, int]]:
        return sorted((a, v) for a, v in self.aliases.items() if a != "production")


@router.get("/")
def home_page(request: Request) -> HTMLResponse:
    from urllib.parse import quote

    client = request.app.state.loopml.client
    now = time.time()
    pipelines = summaries(client)
    total = sum(p.runs for p in pipelines)
    models = [
        ModelRow(v.name, v.number, client.model_aliases(v.name))
        for v in client.models()[:MAX_MODELS]
    ]
    from loopml.server.ui.views.monitors import href as monitor_href
    from loopml.server.ui.views.monitors import summaries as monitor_summaries

    return render(
        request,
        "home/index.html",
        title="Home",
        monitors=monitor_summaries(client)[:MAX_MONITORS],
        monitor_href=monitor_href,
        cards=cards(client, total, now) if total else [],
        pipelines=pipelines,
        models=models,
        failures=client.search_runs(FAILED, limit=FAILURES) if total else [],
        total=total,
        recent=RECENT,
        percent=percent,
        quote=lambda text: quote(text, safe=""),
        first_line=lambda text: (text or "").strip().split("\n")[0],
    )
