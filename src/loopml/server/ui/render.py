"""Rendering the web UI's pages: one Jinja environment, the formats every page shares.

Every page is rendered on the server from the store (through the ``Client``), so it reads
without JavaScript; ``static/ui.js`` only improves it (local times, select-all, sorting
hints). Jinja's autoescape is on for every template: names, tags, params and descriptions
are data, and a ``<script>`` in a run name must show as text (R22). The few fragments
that are already HTML (the SVG charts, which escape their own texts) are marked safe with
``Markup`` where they are made, never in a template.

Formats, the same on every page:

- times: ``<time datetime="ISO">`` written in the viewer's time zone (the ``loopml_tz``
  cookie that ``ui.js`` sets from the browser; UTC until then), so a page without
  JavaScript still shows a correct, labelled time;
- durations: ``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 10 min``, ``3 d 4 h``;
- costs: with the currency of ``[prices]`` in ``loopml.toml``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode
from zoneinfo import ZoneInfo

from markupsafe import Markup

if TYPE_CHECKING:
    from fastapi import Request
    from jinja2 import Environment
    from starlette.responses import HTMLResponse

    from loopml.server.auth import Principal
    from loopml.tracking.client import Client

TZ_COOKIE = "loopml_tz"
NAV = (
    ("/", "Home"),
    ("/runs", "Runs"),
    ("/pipelines", "Pipelines"),
    ("/models", "Models"),
    ("/evaluations", "Evaluations"),
    ("/datasets", "Datasets"),
    ("/monitors", "Monitors"),
)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: the signed-in token (or none), what they may do, their time zone."""

    principal: Principal | None
    auth: bool
    csrf: str
    tz: ZoneInfo

    @property
    def can_write(self) -> bool:
        from loopml.store.tokens import Role, role_allows

        return self.principal is not None and role_allows(self.principal.role, Role.WRITER)

    @property
    def is_admin(self) -> bool:
        from loopml.store.tokens import Role, role_allows

        return self.principal is not None and role_allows(self.principal.role, Role.ADMIN)


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (URL-encoded, as ``ui.js`` writes the cookie), or UTC for a
    missing or unknown one (a cookie is user input)."""
    if name:
        try:
            return ZoneInfo(unquote(name)[:64])
        except (ValueError, KeyError, OSError):
            pass
    return ZoneInfo("UTC")


def when(ts: float | None, tz: ZoneInfo) -> Markup:
    """A ``<time>`` element: ISO UTC in ``datetime``, the viewer's local time as text."""
    if ts is None or not math.isfinite(ts):
        return Markup("–")
    moment = datetime.fromtimestamp(ts, UTC)
    local = moment.astimezone(tz)
    text = local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or "")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(timespec="seconds"), ago(ts), text
    )


def ago(ts: float | None, now: float | None = None) -> str:
    """``"3 min ago"``, ``"in 2 h"``: how far ``ts`` is from now."""
    if ts is None or not math.isfinite(ts):
        return "–"
    delta = (time.time() if now is None else now) - ts
    text = duration(abs(delta), coarse=True)
    return f"{text} ago" if delta >= 0 else f"in {text}"


def duration(seconds: float | None, *, coarse: bool = False) -> str:
    """Human-readable: ``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 10 min``, ``3 d 4 h``."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = max(0.0, float(seconds))
    if s < 1:
        return "0 s" if coarse else f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.0f} s" if coarse else f"{s:.1f} s"
    minutes, sec = divmod(int(round(s)), 60)
    if minutes < 60:
        return f"{minutes} min" if coarse else f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" if coarse else f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d" if coarse else f"{days} d {hours} h"


def number(value: Any) -> str:
    """Metric and param values: 4 significant digits for floats, as stored otherwise."""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return "–" if value is None else str(value)


def size(n: int | None) -> str:
    if n is None:
        return "–"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def badge(status: Any) -> Markup:
    """A coloured status label (``succeeded``, ``failed``, ``running``, ``paused`` …)."""
    word = str(status)
    return Markup('<span class="badge badge-{}">{}</span>').format(
        "".join(c for c in word if c.isalnum()).lower() or "none", word
    )


def url(path: str, **query: Any) -> str:
    """``path`` with ``query`` encoded; ``None`` values are left out, lists repeat the key."""
    pairs: list[tuple[str, Any]] = []
    for key, value in query.items():
        if value is None or value == "":
            continue
        if isinstance(value, list | tuple):
            pairs += [(key, v) for v in value]
        else:
            pairs.append((key, value))
    return f"{path}?{urlencode(pairs)}" if pairs else path


@cache
def environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("loopml.server.ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=duration, number=number, size=size, badge=badge, ago=ago, short=_short
    )
    env.globals.update(url=url, nav=NAV)
    return env


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(
    request: Request, template: str, *, title: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """The page ``template`` with the layout's context (viewer, navigation, formats)."""
    from starlette.responses import HTMLResponse

    from loopml import __version__
    from loopml.server.ui.session import set_cookies, viewer

    state = request.app.state.loopml
    client: Client = state.client
    who = viewer(request)
    currency = client.settings.prices.currency
    from loopml.tracking.cost import format_cost

    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            title=title,
            viewer=who,
            path=request.url.path,
            version=__version__,
            store=client.store_location,
            when=lambda ts: when(ts, who.tz),
            cost=lambda c: format_cost(c, currency),
            currency=currency,
            **context,
        )
    )
    # A stored lone surrogate (not valid Unicode, e.g. in a schedule's params) shows as its
    # escape instead of failing the whole page with a 500 (R22).
    response = HTMLResponse(html.encode("utf-8", "backslashreplace"), status_code=status_code)
    response.headers["cache-control"] = "no-store"
    set_cookies(request, response)
    return response
