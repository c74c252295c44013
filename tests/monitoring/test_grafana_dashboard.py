"""docs/grafana/loopml.json: a dashboard Grafana imports, that queries only metrics that exist.

Every PromQL expression (panels and template variables) is read for ``loopml_*`` names;
each must be a metric a real ``loopml serve`` or a real ``loopml server`` exposes on its
/metrics, scraped here over HTTP after a prediction and a monitor run, so renaming a series
breaks this test instead of silently emptying a panel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_world import cancer_world, parse

from loopml.server.app import create_app as create_server
from loopml.serving.app import create_app as create_serve
from loopml.serving.server import serve_background

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "loopml.json"
NAME = re.compile(r"\bloopml_[a-z_]+")
SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def expressions(board: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, PromQL)`` of every panel target and every query variable."""
    found = [
        (panel["title"], target["expr"])
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append(
                (f"${variable['name']}", query["query"] if isinstance(query, dict) else query)
            )
    return found


def test_the_dashboard_imports_with_a_prometheus_input(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 36
    assert [(i["name"], i["type"], i["pluginId"]) for i in dashboard["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")
    ]
    assert dashboard["uid"] and dashboard["title"] and dashboard["id"] is None
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"  # also works when provisioned
    monitor = variables["monitor"]
    assert monitor["query"]["query"] == "label_values(loopml_monitor_window_rows, monitor)"
    assert monitor["multi"] and monitor["includeAll"]
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert any("Serving health" in r for r in rows) and any("Monitors" in r for r in rows)
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"] and all(t["datasource"] == DATASOURCE for t in panel["targets"])
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    # Panels do not overlap on Grafana's 24-column grid.
    taken: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        cells = {(g["x"] + dx, g["y"] + dy) for dx in range(g["w"]) for dy in range(g["h"])}
        assert not cells & taken, panel["title"]
        taken |= cells


def test_every_expression_is_balanced_and_uses_the_template_variables(
    dashboard: dict[str, Any],
) -> None:
    for where, expr in expressions(dashboard):
        depth = 0
        for char in expr:
            depth += {"(": 1, ")": -1, "{": 1, "}": -1, "[": 1, "]": -1}.get(char, 0)
            assert depth >= 0, (where, expr)
        assert depth == 0 and expr.count('"') % 2 == 0, (where, expr)
        if "loopml_monitor_" in expr and "scrape" not in expr and where != "$monitor":
            assert 'monitor=~"$monitor"' in expr, (where, expr)
        if NAME.search(expr) and "loopml_monitor_" not in expr:
            assert 'job=~"$job"' in expr or where == "$job", (where, expr)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_every_metric_the_dashboard_queries_exists(client: Any, dashboard: dict[str, Any]) -> None:
    world = cancer_world(client)
    rows = world.test_frame.drop(columns="target").head(5).to_dict("records")
    exposed: set[str] = set()
    serve = create_serve("cancer@production", runtime="native", client=client)
    with serve_background(serve) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post("/predict", json=rows).status_code == 200
        assert http.post("/predict", json={"bad": 1}).status_code >= 400
        exposed |= parse(http.get("/metrics").text)[1]
    with (
        serve_background(create_server(client)) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        exposed |= parse(http.get("/metrics").text)[1]
    assert {"loopml_requests_total", "loopml_monitor_feature_psi"} <= exposed

    def exists(name: str) -> bool:
        if name in exposed:
            return True
        return any(name.endswith(s) and name.removesuffix(s) in exposed for s in SUFFIXES)

    used = {(where, name) for where, expr in expressions(dashboard) for name in NAME.findall(expr)}
    missing = sorted(f"{where}: {name}" for where, name in used if not exists(name))
    assert missing == []
    # The dashboard covers both: serving health and the monitors.
    names = {name for _, name in used}
    assert {"loopml_request_seconds_bucket", "loopml_rows_predicted_total"} <= names
    assert {"loopml_monitor_feature_psi", "loopml_monitor_prediction_share"} <= names
    assert {"loopml_monitor_metric", "loopml_monitor_alerts_total"} <= names
