"""The interactive API docs open with no internet: Swagger UI is vendored in the package."""

from __future__ import annotations

from typing import Any

from conftest import shot


def test_api_docs_render_offline_from_the_servers_own_files(page: Any, server: str) -> None:
    loaded: list[str] = []
    page.on("request", lambda r: loaded.append(r.url))
    page.goto(f"{server}/api/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "loopml" in page.locator(".swagger-ui .info .title").inner_text()
    page.locator(".opblock-summary-path", has_text="/api/runs").first.wait_for()
    assert any(u.endswith("/static/vendor/swagger-ui/swagger-ui-bundle.js") for u in loaded)
    assert all(u.startswith(server) for u in loaded), loaded  # nothing from a CDN
    shot(page, "api-docs")
