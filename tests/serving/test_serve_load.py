"""``loopml serve`` under load: nothing fails, every sampled prediction is logged, an alias
switch drops no request, split and shadow traffic are tagged and accounted for.

Every test runs the real app on uvicorn on loopback (``serve_server.running``) and drives it
with 8 client threads, each with its own keep-alive ``httpx.Client``. The served model is
``serve_lean``'s (about 1 ms a row), so the load measures serving, not scikit-learn.

Counts come from the store and from ``/metrics``, never from timing: after ``running``
returns, the app's lifespan has drained the prediction log, so the store holds every row
it will ever hold, and the metrics registry (what ``/metrics`` serves) says how many rows
were written, dropped and failed.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from serve_lean import body, register_lean

from loopml.registry.promotion import promote
from loopml.serving.app import create_app
from loopml.serving.logbook import predictions
from serve_server import churn_frame, running

CLIENTS = 8
JSON = {"content-type": "application/json"}


@dataclass
class Answer:
    status: int
    doc: dict[str, Any]
    rows: int = 1


@dataclass
class Load:
    """What the clients saw: each client's answers in order, and transport failures."""

    answers: list[list[Answer]] = field(default_factory=lambda: [[] for _ in range(CLIENTS)])
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def all(self) -> list[Answer]:
        return [a for answers in self.answers for a in answers]

    def ids(self) -> list[str]:
        return [pid for a in self.all if a.status == 200 for pid in a.doc["prediction_ids"]]


def drive(
    url: str,
    n: int,
    *,
    rows: Callable[[int], int] = lambda i: 1,
    path: str = "/predict",
) -> Load:
    """``n`` requests to ``path`` from ``CLIENTS`` threads (request ``i`` carries ``rows(i)``)."""
    load = Load()

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(k, n, CLIENTS):
                try:
                    r = http.post(path, content=body(i, rows(i)), headers=JSON)
                except httpx.HTTPError as exc:
                    load.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                load.answers[k].append(Answer(r.status_code, r.json(), rows(i)))

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.perf_counter() - started
    return load


def metric(text: str, name: str) -> float:
    """One sample of the Prometheus exposition ``text`` (``name`` with its labels, if any)."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def final_metrics(app: Any) -> str:
    """What ``/metrics`` would answer now that the app has stopped (its log drained)."""
    from prometheus_client import generate_latest

    return generate_latest(app.state.serve.metrics.registry).decode()


def log_counts(text: str) -> tuple[float, float, float]:
    return tuple(  # type: ignore[return-value]
        metric(text, f"loopml_prediction_log_{what}_rows")
        for what in ("written", "dropped", "failed")
    )


def binomial_ok(k: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(k - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


# -- 10,000 requests, every one logged --------------------------------------------------------


def test_ten_thousand_requests_all_answered_and_logged() -> None:
    register_lean()
    app = create_app("churn@1", runtime="native", log_sample=1.0, follow_seconds=0)
    with running(app) as url:
        load = drive(url, 10_000)
        during = httpx.get(f"{url}/metrics").text
    print(
        f"\n10,000 single-row requests from {CLIENTS} clients: {load.seconds:.1f} s, "
        f"{10_000 / load.seconds:,.0f} req/s"
    )

    assert load.failures == []
    assert [a.status for a in load.all] == [200] * 10_000
    ids = load.ids()
    assert len(ids) == len(set(ids)) == 10_000
    assert metric(during, 'loopml_requests_total{code="200",route="predict"}') == 10_000
    assert log_counts(during)[1:] == (0, 0)

    logged = predictions("churn")
    assert len(logged) == 10_000
    assert set(logged["prediction_id"]) == set(ids)
    answered = {a.doc["prediction_ids"][0]: a.doc["predictions"][0] for a in load.all}
    assert (logged["prediction"] == logged["prediction_id"].map(answered)).all()
    assert (logged["version"] == 1).all() and (logged["variant"] == "churn@1").all()
    assert log_counts(final_metrics(app)) == (10_000, 0, 0)


def test_sampled_log_holds_exactly_the_sampled_requests() -> None:
    """``log_sample=0.1``: the logged rows are whole requests the server answered, their
    number is what the log counted as written (none dropped or failed), and the share of
    requests sampled is within 5 σ of 10 %. Every 10th request carries 3 rows: sampling
    is per request, so its rows are all logged or none."""
    register_lean()
    app = create_app("churn@1", runtime="native", log_sample=0.1, follow_seconds=0)
    n = 2_000
    with running(app) as url:
        load = drive(url, n, rows=lambda i: 3 if i % 10 == 0 else 1)
    assert load.failures == []
    assert all(a.status == 200 for a in load.all) and len(load.all) == n

    logged = set(predictions("churn")["prediction_id"])
    assert logged <= set(load.ids())
    sampled = 0
    for a in load.all:
        ids = set(a.doc["prediction_ids"])
        assert len(ids) == a.rows
        assert ids <= logged or not ids & logged, "a request was logged in part"
        sampled += ids <= logged
    assert log_counts(final_metrics(app)) == (len(logged), 0, 0)
    assert binomial_ok(sampled, n, 0.1), f"{sampled} of {n} requests sampled at 10 %"


def test_infinity_is_refused_and_a_batch_the_log_cannot_write_does_not_stop_it() -> None:
    """A CSV ``inf`` is a 422 naming the column and row (no model can score it); a batch the
    log cannot turn into rows is counted as failed, and the log goes on with the next ones."""
    import numpy as np

    from loopml.serving.served import Outputs

    register_lean("churn")
    app = create_app("churn@1", runtime="native", follow_seconds=0)
    with running(app) as url:
        odd = httpx.post(
            f"{url}/predict", content=b"age,income\n30,inf\n", headers={"content-type": "text/csv"}
        )
        assert odd.status_code == 422, odd.text
        [problem] = odd.json()["detail"]
        assert problem["loc"] == ["body", "income"] and problem["rows"] == [0]
        assert "infinity" in problem["msg"]
        state = app.state.serve
        served = state.primary.served
        good = served.check_columns({"age": [30], "income": [1.0]}, 1)
        # outputs shorter than the ids: the writer cannot build the row
        state.log.submit("churn", 1, "churn@1", ["broken-1"], good, Outputs(np.empty(0)))
        load = drive(url, 100)
    assert load.failures == [] and [a.status for a in load.all] == [200] * 100
    written, dropped, failed = log_counts(final_metrics(app))
    assert (written, failed, dropped) == (100, 1, 0)
    logged = predictions("churn").set_index("prediction_id")
    assert set(load.ids()) == set(logged.index)


class _SlowStore:
    """A store whose prediction writes take a while (the ``client`` a PredictionLog needs)."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def open(self) -> _SlowStore:
        return self

    @property
    def metadata(self) -> _SlowStore:
        return self

    @property
    def predictions(self) -> _SlowStore:
        return self

    def add(self, rows: list[Any]) -> None:
        time.sleep(0.3)
        self.rows += rows


def test_flush_waits_for_the_write_not_just_the_queue() -> None:
    from loopml.serving.logbook import PredictionLog
    from loopml.serving.served import load_served

    register_lean()
    served = load_served("churn@1", runtime="native")
    batch = served.check(churn_frame(3)[0][["age", "income"]])
    store = _SlowStore()
    log = PredictionLog(store, flush_seconds=60)  # type: ignore[arg-type]
    try:
        log.submit("churn", 1, "churn@1", ["a-1", "a-2", "a-3"], batch, served.predict(batch))
        log.flush()
        assert (log.written, len(store.rows)) == (3, 3)
    finally:
        log.close()


# -- the alias moves under load ---------------------------------------------------------------


def test_alias_switch_under_load_drops_nothing(client: Any) -> None:
    """8 clients call ``churn@production`` while version 2 is registered and promoted: no
    request fails, each client sees version 1 then version 2 and never 1 again, and every
    answer is logged with the version that gave it. Runs on SQLite and PostgreSQL."""
    register_lean(C=1.0, client=client)
    promote("churn", 1, to="production", client=client)
    app = create_app("churn@production", runtime="native", follow_seconds=0.05, client=client)
    warm, after_switch = 200, 100  # requests before the promotion; per client after it
    answers: list[list[tuple[int, str, float]]] = [[] for _ in range(CLIENTS)]
    failures: list[str] = []
    warmed = threading.Event()
    seen_new = [threading.Event() for _ in range(CLIENTS)]
    total = iter(range(1, 10**9))  # next() is atomic under the GIL
    deadline = time.monotonic() + 120

    def run_client(k: int, url: str) -> None:
        left = after_switch
        with httpx.Client(base_url=url, timeout=30) as http:
            i = k
            while left and time.monotonic() < deadline:
                i += CLIENTS
                try:
                    r = http.post("/predict", content=body(i), headers=JSON)
                    doc = r.json()
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code}: {r.text[:200]}")
                    continue
                answers[k].append((doc["version"], doc["prediction_ids"][0], time.monotonic()))
                if doc["version"] == 2:
                    seen_new[k].set()
                    left -= 1
                if next(total) >= warm:
                    warmed.set()

    with running(app) as url:
        threads = [threading.Thread(target=run_client, args=(k, url)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        assert warmed.wait(60), failures
        register_lean(C=0.001, client=client)
        promote("churn", 2, to="production", client=client)
        promoted = time.monotonic()
        for k, event in enumerate(seen_new):
            assert event.wait(60), f"client {k} never saw version 2: {failures[:3]}"
        for t in threads:
            t.join()
        ready = httpx.get(f"{url}/ready").json()
        during = httpx.get(f"{url}/metrics").text

    assert failures == []
    for k, seen in enumerate(answers):
        versions = [v for v, _, _ in seen]
        assert versions == sorted(versions), f"client {k} went back to version 1"
        assert versions[-after_switch:] == [2] * after_switch
    first_new = min(at for seen in answers for v, _, at in seen if v == 2)
    old = sum(v == 1 for seen in answers for v, _, _ in seen)
    new = sum(v == 2 for seen in answers for v, _, _ in seen)
    assert old >= warm and new >= CLIENTS * after_switch
    print(
        f"\nswitch: {old} answers from version 1, {new} from version 2, first version 2 "
        f"answer {1000 * (first_new - promoted):.0f} ms after the promotion; 0 failed"
    )
    assert ready["variants"][0]["version"] == 2
    assert metric(during, 'loopml_model_switches_total{variant="churn@production"}') == 1

    logged = predictions("churn", client=client)
    answered = {pid: v for seen in answers for v, pid, _ in seen}
    assert len(logged) == len(answered) == old + new
    assert (logged["version"] == logged["prediction_id"].map(answered)).all()


# -- split and shadow traffic -----------------------------------------------------------------


def two_versions() -> None:
    """Version 1 at ``production``, version 2 (another C) at ``staging``."""
    register_lean(C=1.0)
    register_lean(C=0.001)
    promote("churn", 1, to="production")
    promote("churn", 2, to="staging")


def test_split_sends_its_share_and_tags_every_answer() -> None:
    two_versions()
    app = create_app(
        "churn@production", split=[("churn@staging", 30)], runtime="native", follow_seconds=0
    )
    n = 2_000
    with running(app) as url:
        load = drive(url, n)
    assert load.failures == [] and [a.status for a in load.all] == [200] * n
    variant = {a.doc["prediction_ids"][0]: a.doc["variant"] for a in load.all}
    for a in load.all:
        expected = {"churn@production": 1, "churn@staging": 2}[a.doc["variant"]]
        assert a.doc["version"] == expected
    staging = sum(v == "churn@staging" for v in variant.values())
    print(f"\nsplit 30 %: {staging} of {n} answered by churn@staging ({100 * staging / n:.1f} %)")
    assert binomial_ok(staging, n, 0.3), f"{staging} of {n} went to staging at 30 %"

    logged = predictions("churn")
    assert len(logged) == n
    assert (logged["variant"] == logged["prediction_id"].map(variant)).all()
    assert set(logged.groupby("variant")["version"].unique().map(tuple)) == {(1,), (2,)}
    text = final_metrics(app)
    assert metric(text, 'loopml_rows_predicted_total{variant="churn@staging"}') == staging


def test_shadow_scores_every_request_and_answers_from_production() -> None:
    """Answers all come from production; each answered row has a shadow row (``shadow_of``
    its id, variant ``shadow:churn@staging``) unless the shadow backlog was full, which is
    counted; feedback sent for an answered id reaches its shadow row too."""
    two_versions()
    app = create_app("churn@production", shadow="churn@staging", runtime="native", follow_seconds=0)
    n = 400
    with running(app) as url:
        load = drive(url, n)
        labelled = load.ids()[:50]
        r = httpx.post(
            f"{url}/feedback", json=[{"prediction_id": pid, "label": 1} for pid in labelled]
        )
        assert r.status_code == 200, r.text
    assert load.failures == [] and [a.status for a in load.all] == [200] * n
    assert {(a.doc["variant"], a.doc["version"]) for a in load.all} == {("churn@production", 1)}

    from loopml.tracking.client import default_client

    rows = default_client().open().metadata.predictions.query("churn")
    answered = [r for r in rows if r.shadow_of is None]
    shadows = [r for r in rows if r.shadow_of is not None]
    assert {r.id for r in answered} == set(load.ids())
    assert {(r.variant, r.version) for r in answered} == {("churn@production", 1)}
    assert {(r.variant, r.version) for r in shadows} <= {("shadow:churn@staging", 2)}
    assert len({r.shadow_of for r in shadows}) == len(shadows)
    assert {r.shadow_of for r in shadows} <= set(load.ids())
    text = final_metrics(app)
    skipped = metric(text, "loopml_shadow_skipped_rows_total")
    assert metric(text, "loopml_shadow_failed_rows_total") == 0
    assert len(shadows) + skipped == n
    print(f"\nshadow: {len(shadows)} of {n} requests scored in the shadow, {skipped:g} skipped")

    label = predictions("churn").set_index("prediction_id")["label"]
    assert (label[labelled] == 1).all()
    shadow_label = label[[r.id for r in shadows]]
    joined = [r.shadow_of in labelled for r in shadows]
    assert (shadow_label[joined] == 1).all() and shadow_label[[not j for j in joined]].isna().all()
    assert sum(joined) > 0


def test_a_failing_shadow_never_touches_the_answers() -> None:
    """The shadow needs a ``plan`` column the requests lack: it fails on every request,
    which is counted, and every request is still answered and logged."""
    from serve_server import register_classifier

    register_lean()
    register_classifier("wide")
    app = create_app("churn@1", shadow="wide@1", runtime="native", follow_seconds=0)
    n = 200
    with running(app) as url:
        load = drive(url, n)
    assert load.failures == [] and [a.status for a in load.all] == [200] * n
    text = final_metrics(app)
    failed = metric(text, "loopml_shadow_failed_rows_total")
    assert failed > 0 and failed + metric(text, "loopml_shadow_skipped_rows_total") == n
    assert set(predictions("churn")["prediction_id"]) == set(load.ids())
    assert predictions("wide").empty


# -- the store fails under the log ------------------------------------------------------------


def fill(path: Any) -> None:
    """Append to ``path`` until its file system has not one byte free."""
    with open(path, "ab", buffering=0) as f:
        for size in (1 << 16, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass


def test_a_full_disk_under_the_log_fails_no_request(project: Any) -> None:
    """The store lives on a small tmpfs that is filled mid-run (as another program would):
    requests keep succeeding, the rows that could not be written are counted in
    ``/metrics``, and once space is freed the log writes again. Every answered row is
    either in the store or counted as failed."""
    import subprocess

    where = project / ".loopml"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        register_lean()
        app = create_app("churn@1", runtime="native", follow_seconds=0)
        log = app.state.serve.log
        sent = 0
        with running(app) as url:

            def burst(n: int) -> tuple[float, float, float]:
                nonlocal sent
                load = drive(url, n)
                assert load.failures == [] and [a.status for a in load.all] == [200] * n
                sent += n
                log.flush()
                return log_counts(httpx.get(f"{url}/metrics").text)

            assert burst(100) == (100, 0, 0)
            filler = where / "filler"
            for _ in range(10):  # the store first gives back its reserve: fill that too
                fill(filler)
                written, dropped, failed = burst(40)
                if failed:
                    break
            assert failed > 0 and dropped == 0
            assert "full" in (log.last_error or ""), log.last_error
            filler.unlink()
            after = burst(40)
            assert after[0] > written, "the log did not recover once space was freed"
        written, dropped, failed = log_counts(final_metrics(app))
        assert written + failed == sent and dropped == 0
        assert len(predictions("churn")) == written
        print(
            f"\nfull disk: {sent} requests answered, {written:g} rows logged, "
            f"{failed:g} counted as failed"
        )
    finally:
        from loopml.tracking import client as client_module

        for c in client_module._clients.values():
            c.close()
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)
