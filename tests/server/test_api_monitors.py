"""The monitor routes and the prediction log over real HTTP (issue 19).

One store (``monitored_store``): a breast-cancer classifier in production, 8 hourly windows of
logged predictions whose ``mean_radius`` moves from the fifth on, and two monitors over
them. ``live`` is evaluated through the library; ``fresh`` is left for ``POST .../run``.
The answers are checked against the library's, pages are followed to the end, and roles,
unknown names and bad parameters get the 4xx a user can act on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import httpx
import pytest
from api_read_world import detail, every_page

from loopml.server.app import create_app
from loopml.serving.server import serve_background
from monitored_store import (
    DRIFTED,
    HOURS,
    LABELLED,
    ROWS,
    SHIFT_FROM,
    MonitorWorld,
    build_monitor_world,
    evaluate,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitorWorld]:
    w = build_monitor_world(tmp_path_factory.mktemp("monitors") / "p", monitors=("live", "fresh"))
    evaluate(w, "live")
    yield w
    w.client.close()


@pytest.fixture(scope="module")
def http(world: MonitorWorld) -> Iterator[httpx.Client]:
    with (
        serve_background(create_app(world.client, auth=True)) as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        yield client


def as_(world: MonitorWorld, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[role]}"}


def test_run_now_evaluates_the_windows_and_fires_the_drift_alert_once(
    http: httpx.Client, world: MonitorWorld
) -> None:
    writer = as_(world, "writer")
    assert http.post("/api/monitors/fresh/run").status_code == 401
    refused = http.post("/api/monitors/fresh/run", headers=as_(world, "reader"))
    assert refused.status_code == 403 and "writer" in detail(refused)
    assert world.client.metadata.monitors.windows("fresh") == []  # nothing ran

    first = http.post("/api/monitors/fresh/run", headers=writer)
    assert first.status_code == 200, first.text
    body = first.json()
    logged = [w for w in body["evaluated"] if w["rows"]]
    assert [w["start"] for w in logged] == [world.t0 + h * 3600 for h in range(HOURS)]
    assert all(w["rows"] == ROWS for w in logged)
    assert [w["labels"] for w in logged] == [ROWS] * LABELLED + [0] * (HOURS - LABELLED)
    drift = [a for a in body["alerts"] if a["rule"] == "feature_drift"]
    # "psi(*) > 0.25 for 2 windows": the shift starts at window 4, so it fires from window 5.
    assert [a["window_start"] for a in drift] == [
        world.t0 + h * 3600 for h in range(SHIFT_FROM + 1, HOURS)
    ]
    assert all(f"psi('{DRIFTED}')" in a["message"] for a in drift)

    again = http.post("/api/monitors/fresh/run", headers=writer).json()
    assert again["alerts"] == []  # each rule fires once per window
    assert again["up_to_date"] >= HOURS

    missing = http.post("/api/monitors/frsh/run", headers=writer)
    assert missing.status_code == 404 and "Did you mean 'fresh'?" in detail(missing)


def test_the_list_shows_status_last_window_and_alerts(
    http: httpx.Client, world: MonitorWorld
) -> None:
    from loopml.monitoring import list_monitors

    reader = as_(world, "reader")
    assert http.get("/api/monitors").status_code == 401  # auth on: reads need a token too
    http.headers.update(reader)
    try:
        got = {m["name"]: m for m in every_page(http, "/api/monitors", 1)}
    finally:
        del http.headers["Authorization"]
    expected = {i.record.name: i for i in list_monitors(world.client)}
    assert set(got) == set(expected)
    live = got["live"]
    assert live["model"] == "cancer@production" and live["window_s"] == 3600
    assert live["status"] == "alert" and "feature_drift" in live["last_alerts"]
    assert live["alerts"] == expected["live"].alerts > 0
    assert live["last_window"]["rows"] == ROWS
    assert live["last_window"]["start"] >= world.t0 + (HOURS - 1) * 3600
    assert live["next_window_end"] > live["last_window"]["end"]
    assert "feature_drift" in live["rules"]


def test_a_monitor_with_its_newest_windows_and_the_drifted_feature(
    http: httpx.Client, world: MonitorWorld
) -> None:
    reader = as_(world, "reader")
    answer = http.get("/api/monitors/live", params={"limit": 3}, headers=reader)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    starts = [w["start"] for w in body["windows"]]
    assert starts == sorted(starts, reverse=True) and len(starts) == 3  # newest first
    for w in body["windows"]:
        assert w["drifted"][0] == DRIFTED
        assert w["flagged"][0] == DRIFTED  # the rules flag it first (worst PSI)
        columns = w["stats"]["drift"]["columns"]
        assert columns[0]["column"] == DRIFTED and columns[0]["statistics"]["psi"] > 1
        assert set(w["stats"]) >= {"quality", "prediction", "performance", "features"}
    default = http.get("/api/monitors/live", headers=reader).json()
    assert len(default["windows"]) == HOURS  # fewer than the default of 50
    before = [w for w in default["windows"] if w["start"] < world.t0 + SHIFT_FROM * 3600]
    assert before and all(w["stats"]["drift"]["columns"][0]["column"] != DRIFTED for w in before)
    labelled = [w for w in default["windows"] if w["labels"]]
    live_metrics = labelled[0]["stats"]["performance"]["live"]["metrics"]
    assert live_metrics["accuracy"] > 0.8
    rules = {a["rule"] for a in default["recent_alerts"]}
    assert "feature_drift" in rules
    assert http.get("/api/monitors/live", params={"limit": 1001}, headers=reader).status_code == 422

    unknown = http.get("/api/monitors/lve", headers=reader)
    assert unknown.status_code == 404
    assert "Did you mean 'live'?" in detail(unknown)
    bad = http.get("/api/monitors/..%2Fetc", headers=reader)
    assert 400 <= bad.status_code < 500


def test_windows_page_by_offset_and_time(http: httpx.Client, world: MonitorWorld) -> None:
    from loopml.monitoring import windows

    reader = as_(world, "reader")
    http.headers.update(reader)
    try:
        got = every_page(http, "/api/monitors/live/windows", 3)
        light = every_page(http, "/api/monitors/live/windows", 5, stats="false")
    finally:
        del http.headers["Authorization"]
    stored = list(reversed(windows("live", client=world.client)))
    assert [w["start"] for w in got] == [w.start for w in stored]
    assert [w["stats"]["rows"] for w in got] == [w.rows for w in stored]
    assert [w["start"] for w in light] == [w.start for w in stored]
    assert all(w["stats"] is None and w["drifted"] is not None for w in light)

    span = {"since": world.t0 + 2 * 3600, "until": world.t0 + 5 * 3600, "stats": "false"}
    some = http.get("/api/monitors/live/windows", params=span, headers=reader).json()
    assert [w["start"] for w in some["items"]] == [world.t0 + h * 3600 for h in (4, 3, 2)]
    empty = {**span, "since": span["until"]}
    assert (
        http.get("/api/monitors/live/windows", params=empty, headers=reader).json()["items"] == []
    )
    for query in ({"since": "yesterday"}, {"until": "nan"}, {"since": "-1"}, {"limit": 0}):
        refused = http.get("/api/monitors/live/windows", params=query, headers=reader)
        assert refused.status_code == 422, (query, refused.text)
        assert list(query)[0] in detail(refused)
    unknown = http.get("/api/monitors/nope/windows", headers=reader)
    assert unknown.status_code == 404 and "'nope'" in detail(unknown)


def test_alerts_page_newest_window_first(http: httpx.Client, world: MonitorWorld) -> None:
    from loopml.monitoring import alerts
    from loopml.monitoring.engine import alert_json

    http.headers.update(as_(world, "reader"))
    try:
        got = every_page(http, "/api/monitors/live/alerts", 2)
    finally:
        del http.headers["Authorization"]
    stored = alerts("live", limit=1000, client=world.client)
    assert got == [json.loads(json.dumps(alert_json(a))) for a in stored]
    assert [a["window_start"] for a in got] == sorted(
        (a["window_start"] for a in got), reverse=True
    )


def test_pause_and_resume_name_the_caller_and_a_paused_monitor_runs_nothing(
    http: httpx.Client, world: MonitorWorld
) -> None:
    writer = as_(world, "writer")
    refused = http.post("/api/monitors/live/pause", headers=as_(world, "reader"))
    assert refused.status_code == 403
    paused = http.post("/api/monitors/live/pause", headers=writer)
    try:
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"] and paused.json()["status"] == "paused"
        assert paused.json()["updated_by"] == "token:mon-writer"
        ran = http.post("/api/monitors/live/run", headers=writer).json()
        assert ran["paused"] and ran["evaluated"] == [] and ran["alerts"] == []
    finally:
        resumed = http.post("/api/monitors/live/resume", headers=writer)
    assert resumed.status_code == 200 and not resumed.json()["paused"]
    assert resumed.json()["status"] == "alert"
    assert not world.client.metadata.monitors.get("live").paused


def test_predictions_page_with_inputs_outputs_and_labels(
    http: httpx.Client, world: MonitorWorld
) -> None:
    from loopml.store.predictions import PredictionRow

    reader = as_(world, "reader")
    # One row logged a day before the windows with values JSON cannot spell.
    odd = PredictionRow(
        "odd-1", "cancer", 1, "cancer@production", world.t0 - 86400,
        json.dumps({DRIFTED: math.nan, "x": math.inf}), json.dumps({"prediction": -math.inf}),
    )  # fmt: skip
    world.client.metadata.predictions.add([odd])
    http.headers.update(reader)
    try:
        got = every_page(http, "/api/predictions", 700, model="cancer")
    finally:
        del http.headers["Authorization"]
    assert len(got) == HOURS * ROWS + 1
    assert [p["at"] for p in got] == sorted(p["at"] for p in got)  # oldest first
    first = got[0]
    assert first["id"] == "odd-1"
    assert first["inputs"] == {DRIFTED: "nan", "x": "inf"} and first["output"] == {
        "prediction": "-inf"
    }
    row = next(p for p in got if p["id"] == "w0-3")
    assert row["model"] == "cancer" and row["version"] == 1
    assert row["variant"] == "cancer@production"
    assert isinstance(row["inputs"][DRIFTED], float) and row["output"]["prediction"] in (0, 1)
    assert row["label"] in (0, 1) and row["feedback_at"] is not None
    late = next(p for p in got if p["id"] == f"w{HOURS - 1}-3")
    assert late["label"] is None and late["feedback_at"] is None

    hour = {"model": "cancer", "since": world.t0 + 3 * 3600, "until": world.t0 + 4 * 3600}
    page = http.get("/api/predictions", params={**hour, "limit": 1000}, headers=reader).json()
    assert len(page["items"]) == ROWS and page["next_offset"] is None
    assert {p["id"].split("-")[0] for p in page["items"]} == {"w3"}
    full = http.get("/api/predictions", params={**hour, "limit": 100}, headers=reader).json()
    assert full["next_offset"] == 100

    for query, status, words in (
        ({"model": "cancr"}, 404, ["'cancr'", "Did you mean 'cancer'?"]),
        ({"model": "../x"}, 422, ["model"]),
        ({}, 422, ["model"]),
        ({"model": "cancer", "limit": 10_001}, 422, ["limit"]),
        ({"model": "cancer", "since": "soon"}, 422, ["since", "soon"]),
    ):
        refused = http.get("/api/predictions", params=query, headers=reader)
        assert refused.status_code == status, (query, refused.text)
        assert all(w in detail(refused) for w in words), (query, detail(refused))


def test_reads_need_no_token_on_a_loopback_server_but_writes_do(world: MonitorWorld) -> None:
    with (
        serve_background(create_app(world.client)) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        assert http.get("/api/monitors/live").status_code == 200
        assert http.get("/api/predictions", params={"model": "cancer"}).status_code == 200
        for action in ("run", "pause", "resume"):
            assert http.post(f"/api/monitors/live/{action}").status_code == 401


def test_the_openapi_document_lists_the_routes_with_their_bounds(
    http: httpx.Client, world: MonitorWorld
) -> None:
    doc = http.get("/api/openapi.json", headers=as_(world, "reader")).json()
    paths = doc["paths"]
    for path in (
        "/api/monitors",
        "/api/monitors/{name}",
        "/api/monitors/{name}/windows",
        "/api/monitors/{name}/alerts",
        "/api/predictions",
    ):
        assert "get" in paths[path], path
    for action in ("run", "pause", "resume"):
        assert "post" in paths[f"/api/monitors/{{name}}/{action}"]
    limit = next(p for p in paths["/api/predictions"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 10_000 and limit["schema"]["default"] == 100
