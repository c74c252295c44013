"""The read routes of the REST API, over real HTTP, against the library's own answers.

One store per backend is filled by running things (``api_read_world``) and served on
uvicorn; each route's answer is compared with what ``Client`` says, pages are followed to
the end, and unknown names and bad parameters get 4xx bodies that name them. Runs,
artifacts and models run on SQLite and PostgreSQL; data and evaluations on SQLite.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from api_read_world import SERIES_POINTS, World, build_world, detail, every_page, serving

from loopml.server.api.runs import run_out


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("world") / "project"
    if request.param == "sqlite":
        url = f"sqlite:///{root / '.loopml' / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("api_read_world")
    w = build_world(url, root)
    yield w
    w.client.close()


@pytest.fixture(scope="module")
def http(world: World) -> Iterator[httpx.Client]:
    with serving(world.client) as h:
        yield h


# -- runs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter,sort",
    [
        (None, None),
        ("pipeline = 'train'", "metrics.rmse desc"),
        ("params.alpha >= 1", None),
        ("metrics.rmse < 2 and status = 'succeeded'", "started"),
        ("name ~ 'adhoc*'", None),
    ],
)
def test_runs_filter_gives_the_same_runs_as_the_library(
    http: httpx.Client, world: World, filter: str | None, sort: str | None
) -> None:
    params = {k: v for k, v in (("filter", filter), ("sort", sort)) if v is not None}
    got = every_page(http, "/api/runs", 2, **params)
    expected = world.client.search_runs(filter, sort, limit=1000)
    assert [r["id"] for r in got] == [r.id for r in expected]
    assert len({r["id"] for r in got}) == len(got)
    # The list is written without pydantic: it must be what the documented model writes.
    assert got == [json.loads(run_out(r).model_dump_json()) for r in expected]


def test_a_run_list_item_is_what_the_documented_model_writes_nan_and_inf_as_null() -> None:
    import dataclasses

    import orjson

    from loopml.server.api.runs import RunOut, run_item
    from loopml.store.records import RunRecord
    from loopml.store.status import RunStatus

    fields: dict[str, object] = {f.name: None for f in dataclasses.fields(RunRecord)}
    fields.update(
        id="ab" * 16, pipeline="train", number=3, name="train#3", kind="pipeline",
        status=RunStatus.SUCCEEDED, started_at=1.0, ended_at=math.inf, duration_s=math.nan,
        heartbeat_at=1.0, host="h", pid=1, executor="local", git_dirty=True, environment={},
        cpu_s=-math.inf, cost=0.0, params={"a": "1"}, tags={"t": "x"}, lease_s=25.0,
        metrics={"ok": 0.5, "nan": math.nan, "inf": math.inf, "ninf": -math.inf},
    )  # fmt: skip
    record = RunRecord(**fields)  # type: ignore[arg-type]
    written = orjson.loads(orjson.dumps(run_item(record)))
    assert written == json.loads(run_out(record).model_dump_json())
    assert RunOut.model_validate(written).metrics == {"ok": 0.5, "nan": None, "inf": None,
                                                      "ninf": None}  # fmt: skip


def test_a_run_by_label_and_its_steps_say_what_came_from_the_cache(
    http: httpx.Client, world: World
) -> None:
    record = world.client.run_record(world.runs[2])
    got = http.get(f"/api/runs/{quote(record.label)}")
    assert got.status_code == 200 and got.json()["id"] == record.id
    steps = every_page(http, f"/api/runs/{record.id}/steps", 1)
    expected = world.client.steps(record.id)
    assert [(s["name"], s["cached"], s["status"]) for s in steps] == [
        (s.name, s.cached, str(s.status)) for s in expected
    ]
    assert all(s["cached"] and s["why"].startswith("from cache") for s in steps)
    assert all(s["wall_s"] is not None for s in steps)


def test_metric_keys_with_last_value_and_point_count(http: httpx.Client, world: World) -> None:
    got = every_page(http, f"/api/runs/{world.adhoc}/metrics", 1)
    record = world.client.run_record(world.adhoc)
    assert {m["key"]: m["last_value"] for m in got} == record.metrics
    counts = {m["key"]: m["points"] for m in got}
    assert counts == {"acc": 1, "loss": SERIES_POINTS}


def test_metric_history_is_downsampled_by_default_and_keeps_extremes(
    http: httpx.Client, world: World
) -> None:
    full = world.client.metric_history(world.adhoc, "loss")
    got = http.get(f"/api/runs/{world.adhoc}/metrics/loss", params={"max_points": 50}).json()
    points = got["points"]
    assert got["downsampled"] and got["total_points"] == len(full) == SERIES_POINTS
    assert 3 <= len(points) <= 50
    steps = [p["step"] for p in points]
    assert steps == sorted(steps) and steps[0] == full[0].step and steps[-1] == full[-1].step
    by_step = {p.step: p.value for p in full}
    assert all(by_step[p["step"]] == p["value"] for p in points)  # real points, not averages
    top = max(full, key=lambda p: p.value)  # the spike at step 1234
    assert top.step == 1234 and 1234 in steps
    assert min(p.value for p in full) == min(p["value"] for p in points)
    default = http.get(f"/api/runs/{world.adhoc}/metrics/loss").json()
    assert len(default["points"]) <= 1000 and default["downsampled"]


def test_metric_history_pages_give_every_point_once(http: httpx.Client, world: World) -> None:
    full = world.client.metric_history(world.adhoc, "loss")
    seen: list[int] = []
    start: int | None = 0
    while start is not None:
        body = http.get(
            f"/api/runs/{world.adhoc}/metrics/loss", params={"step_from": start, "limit": 700}
        ).json()
        assert not body["downsampled"] and len(body["points"]) <= 700
        seen += [p["step"] for p in body["points"]]
        start = body["next_step_from"]
    assert seen == [p.step for p in full]


def test_run_artifacts_and_unknown_run_and_metric(http: httpx.Client, world: World) -> None:
    got = every_page(http, f"/api/runs/{world.adhoc}/artifacts", 2)
    links = world.client.links(run=world.adhoc)
    assert [(a["name"], a["digest"], a["direction"]) for a in got] == [
        (lk.name, lk.digest, lk.direction) for lk in links
    ]
    outputs = http.get(f"/api/runs/{world.runs[0]}/artifacts", params={"direction": "output"})
    assert {a["direction"] for a in outputs.json()["items"]} == {"output"}
    missing = http.get("/api/runs/nosuchrun/steps")
    assert missing.status_code in (400, 404) and "nosuchrun" in detail(missing)
    no_metric = http.get(f"/api/runs/{world.adhoc}/metrics/los")
    assert no_metric.status_code == 404 and "'los'" in detail(no_metric)
    assert "loss" in detail(no_metric)


@pytest.mark.parametrize(
    "url,name",
    [
        ("/api/runs?limit=0", "limit"),
        ("/api/runs?limit=10000000", "limit"),
        ("/api/runs?offset=-1", "offset"),
        ("/api/runs?filter=metrics.rmse%20%3C%3C%203", "<"),
        ("/api/runs?sort=started_at", "started_at"),
        ("/api/runs/x/metrics/loss?max_points=2", "max_points"),
        ("/api/runs/x/metrics/loss?max_points=100000", "max_points"),
        ("/api/runs/x/metrics/loss?limit=1001", "limit"),
        ("/api/runs/x/artifacts?direction=sideways", "direction"),
        ("/api/artifacts/XYZ", "digest"),
        ("/api/models/clf/versions/1%20or%201", "version"),
    ],
)
def test_bad_parameters_get_a_4xx_that_names_them(http: httpx.Client, url: str, name: str) -> None:
    got = http.get(url)
    assert 400 <= got.status_code < 500, got.text
    assert name in detail(got)


# -- artifacts ----------------------------------------------------------------------------


def test_artifact_list_pages_cover_every_artifact_once(http: httpx.Client, world: World) -> None:
    got = every_page(http, "/api/artifacts", 3)
    expected = world.client.list_artifacts(limit=10_000)
    assert [a["digest"] for a in got] == [r.digest for r in expected]
    assert len({a["digest"] for a in got}) == len(got)
    of_run = every_page(http, "/api/artifacts", 2, run=world.adhoc)
    assert {a["digest"] for a in of_run} == {world.text_digest, world.csv_digest, world.html_digest}


def test_artifact_metadata_by_digest_and_prefix(http: httpx.Client, world: World) -> None:
    record = world.client.artifact(world.csv_digest)
    for ref in (world.csv_digest, world.csv_digest[:10]):
        got = http.get(f"/api/artifacts/{ref}")
        assert got.status_code == 200, got.text
        body = got.json()
        assert (body["digest"], body["size"], body["materializer"], body["type"]) == (
            record.digest,
            record.size,
            record.materializer,
            record.type_name,
        )
        assert [p["run_id"] for p in body["produced_by"]] == [world.adhoc]
    unknown = http.get("/api/artifacts/" + "0" * 64)
    assert unknown.status_code == 404 and "0" * 64 in detail(unknown)


@pytest.mark.parametrize(
    "which,media,name",
    [
        ("csv_digest", "text/csv", "report.csv"),
        ("text_digest", "text/plain", ".txt"),
        ("html_digest", "application/octet-stream", "page.html"),
    ],
)
def test_download_streams_the_stored_bytes_with_type_and_safe_name(
    http: httpx.Client, world: World, which: str, media: str, name: str
) -> None:
    digest = getattr(world, which)
    got = http.get(f"/api/artifacts/{digest}/content")
    assert got.status_code == 200
    assert got.content == world.client.artifacts.get_bytes(digest)
    assert got.headers["content-type"].startswith(media)
    assert got.headers["x-content-type-options"] == "nosniff"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment;") and name in disposition


def test_lineage_of_a_step_output_names_its_producer_inputs_and_readers(
    http: httpx.Client, world: World
) -> None:
    loaded = next(
        lk
        for lk in world.client.links(run=world.runs[0])
        if lk.direction == "output" and lk.step == "load"
    )
    body = http.get(f"/api/artifacts/{loaded.digest}/lineage", params={"limit": 1}).json()
    assert body["artifact"]["digest"] == loaded.digest
    assert world.runs[0] in {p["run_id"] for p in body["produced_by"]}
    consumers = [lk for lk in world.client.links(digest=loaded.digest) if lk.direction == "input"]
    readers: list[dict[str, str]] = []
    offset: int | None = 0
    while offset is not None:
        page = http.get(
            f"/api/artifacts/{loaded.digest}/lineage", params={"limit": 1, "offset": offset}
        ).json()["consumed_by"]
        readers += page["items"]
        offset = page["next_offset"]
    assert [(r["run_id"], r["step"]) for r in readers] == [(lk.run_id, lk.step) for lk in consumers]
    assert readers and {r["step"] for r in readers} == {"fit"}


# -- models -------------------------------------------------------------------------------


def test_models_versions_aliases_and_history(http: httpx.Client, world: World) -> None:
    c = world.client
    models = every_page(http, "/api/models", 1)
    assert [(m["name"], m["latest"]["version"], m["aliases"]) for m in models] == [
        (v.name, v.number, c.model_aliases(v.name)) for v in c.models()
    ]
    detail_ = http.get("/api/models/clf", params={"limit": 1}).json()
    assert detail_["aliases"] == {"production": 2} and detail_["versions"]["next_offset"] == 1
    version = http.get("/api/models/clf/versions/production").json()
    stored = c.model_version("clf@production")
    assert (version["version"], version["digest"]) == (stored.number, stored.digest)
    assert [e["id"] for e in version["evaluations"]] == [
        e.id for e in c.model_evaluations(stored.digest)
    ]
    assert http.get("/api/models/clf/aliases").json() == c.model_aliases("clf")
    history = every_page(http, "/api/models/clf/history", 1)
    assert [(e["alias"], e["from_version"], e["to_version"], e["reason"]) for e in history] == [
        (e.alias, e.from_number, e.to_number, e.reason) for e in c.alias_history("clf")
    ]


@pytest.mark.parametrize(
    "url,named",
    [
        ("/api/models/nosuch", "nosuch"),
        ("/api/models/nosuch/history", "nosuch"),
        ("/api/models/clf/versions/9", "9"),
        ("/api/models/clf/versions/staging", "staging"),
    ],
)
def test_unknown_models_and_versions_are_404_naming_them(
    http: httpx.Client, url: str, named: str
) -> None:
    got = http.get(url)
    assert got.status_code == 404 and named in detail(got)


# -- data and evaluations (SQLite only) --------------------------------------------------


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_datasets_versions_and_profile(http: httpx.Client, world: World) -> None:
    c = world.client
    listed = every_page(http, "/api/datasets", 1)
    assert [(d["name"], d["version"]) for d in listed] == [(v.name, v.number) for v in c.datasets()]
    versions = every_page(http, "/api/datasets/points", 1)
    assert [v["digest"] for v in versions] == [v.digest for v in c.dataset_versions("points")]
    one = http.get("/api/datasets/points/2", params={"limit": 2}).json()
    stored = c.dataset_version("points@2")
    assert (one["digest"], one["rows"], one["columns"]) == (
        stored.digest,
        stored.rows,
        stored.columns,
    )
    assert one["profile"]["next_offset"] == 2 and len(one["profile"]["items"]) == 2
    columns = one["profile"]["items"]
    profile = c.load_artifact(stored.profile_digest)
    assert [col["name"] for col in columns] == [col["name"] for col in profile["columns"][:2]]
    assert columns[0]["count"] == profile["columns"][0]["count"]
    assert http.get(f"/api/datasets/points/{stored.digest[:8]}").json()["version"] == 2
    for url, named in (("/api/datasets/nope", "nope"), ("/api/datasets/points/7", "7")):
        got = http.get(url)
        assert got.status_code == 404 and named in detail(got)


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_suites_leaderboard_and_evaluation(http: httpx.Client, world: World) -> None:
    from loopml.evaluation.suites import suite

    c = world.client
    suites = every_page(http, "/api/suites", 1)
    assert [s["ref"] for s in suites] == [v.label for v in c.suites()]
    assert (
        http.get("/api/suites/holdout").json()["latest"]["test_rows"]
        == c.suite_version("holdout").test_rows
    )
    board = http.get("/api/suites/holdout/leaderboard").json()
    expected = suite("holdout", client=c).leaderboard()
    assert board["metric"] == expected.metric
    assert [(e["rank"], e["group"], e["evaluation"]) for e in board["entries"]["items"]] == [
        (e.rank, e.group, e.evaluation) for e in expected.entries
    ]
    first = board["entries"]["items"][0]
    assert first["low"] <= first["value"] <= first["high"]
    evaluation = http.get(f"/api/evaluations/{first['evaluation']}").json()
    stored = c.evaluation(first["evaluation"])
    assert {k: v["value"] for k, v in evaluation["metrics"].items()} == {
        k: (None if math.isnan(v[0]) else v[0]) for k, v in stored.metrics.items()
    }
    slices = evaluation["slices"]["items"]
    assert {s["value"] for s in slices} == {"north", "south"}
    assert all("roc_auc" in s["metrics"] for s in slices)
    for url, named in (
        ("/api/suites/nope", "nope"),
        ("/api/suites/nope/leaderboard", "nope"),
        ("/api/evaluations/999", "999"),
        ("/api/suites/holdout/leaderboard?metric=bogus", "bogus"),
    ):
        got = http.get(url)
        assert 400 <= got.status_code < 500 and named in detail(got), (url, got.text)


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_openapi_describes_the_read_routes(http: httpx.Client) -> None:
    doc = http.get("/api/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/api/runs/{run}/metrics/{key}",
        "/api/artifacts/{digest}/content",
        "/api/datasets/{name}/{version}",
        "/api/models/{name}/history",
        "/api/suites/{name}/leaderboard",
        "/api/evaluations/{id}",
    ):
        assert "get" in paths[path], sorted(paths)
    schema = paths["/api/runs/{run}/steps"]["get"]["responses"]["200"]["content"]
    ref = schema["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "items" in doc["components"]["schemas"][ref]["properties"]
