"""A store filled by actually running things, served by the REST API on loopback.

``build_world(store_url, root)`` runs a two-step pipeline three times (the third reuses
the cache), an ad-hoc run with a long metric series and logged artifacts (a text value, a
CSV file, a file named like an HTML page), adds a dataset, registers two models and moves
an alias twice, and evaluates both models on a suite with a slice. ``serving(world)``
serves ``create_app(world.client)`` with uvicorn on 127.0.0.1 and yields an httpx client.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

SERIES_POINTS = 3_000  # the ad-hoc run's "loss" series: longer than the default max_points


@dataclass
class World:
    client: Any
    root: Path
    runs: list[str]  # pipeline runs, oldest first
    adhoc: str  # the ad-hoc run's id
    text_digest: str
    csv_digest: str
    html_digest: str


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=n),
            "site": np.where(np.arange(n) % 3 == 0, "north", "south"),
            "y": (x + rng.normal(scale=0.5, size=n) > 0).astype(int),
        }
    )


@contextmanager
def _inside(root: Path, store_url: str) -> Iterator[None]:
    """The default client of module-level functions points at this store while building."""
    from loopml.tracking import client as client_module

    saved_cwd, saved_env = os.getcwd(), os.environ.get("LOOPML_STORE_URI")
    os.chdir(root)
    os.environ["LOOPML_STORE_URI"] = store_url
    client_module._clients.clear()
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        if saved_env is None:
            os.environ.pop("LOOPML_STORE_URI", None)
        else:
            os.environ["LOOPML_STORE_URI"] = saved_env
        client_module._clients.clear()


def build_world(store_url: str, root: Path) -> World:
    import loopml
    from loopml.registry.promotion import promote
    from loopml.tracking.client import Client

    root.mkdir(parents=True, exist_ok=True)
    (root / "loopml.toml").write_text('[project]\nname = "api"\n')
    with _inside(root, store_url):

        @loopml.step
        def load(rows: int) -> pd.DataFrame:
            return _frame(rows)

        @loopml.step
        def fit(data: pd.DataFrame, *, alpha: float) -> dict[str, float]:
            for i in range(5):
                loopml.log_metric("train.loss", alpha / (i + 1), step=i)
            loopml.log_metric("rmse", alpha * 2)
            return {"alpha": alpha, "mean": float(data["x"].mean())}

        @loopml.pipeline(name="train")
        def train(alpha: float = 0.5, rows: int = 200) -> None:
            fit(load(rows), alpha=alpha)

        train(alpha=0.5)
        train(alpha=1.5)
        train(alpha=0.5)  # every step from the cache
        client = Client(store_uri=store_url).open()
        runs = [r.id for r in client.search_runs(sort="started")]

        (root / "report.csv").write_text("a,b\n1,2\n")
        (root / "page.html").write_text("<script>alert(1)</script>")
        with client.start_run("adhoc") as run:
            run.log_params({"kind": "series"})
            for i in range(SERIES_POINTS):
                run.log_metric(
                    "loss", float(np.sin(i / 50.0) + (5.0 if i == 1234 else 0.0)), step=i
                )
            run.log_metric("acc", 0.9)
            text_digest = run.log_artifact("hello from loopml", "greeting")
            csv_digest = run.log_artifact(root / "report.csv", "report")
            html_digest = run.log_artifact(root / "page.html", "page")
            adhoc = run.id

        loopml.add_dataset(_frame(200, seed=1), name="points", client=client)
        loopml.add_dataset(_frame(220, seed=2), name="points", client=client)

        from sklearn.linear_model import LogisticRegression

        data = _frame(400, seed=3)
        X = data[["x", "z"]]
        strong = LogisticRegression().fit(X, data["y"])
        weak = LogisticRegression(C=1e-4).fit(X[["z"]].assign(x=0.0)[["x", "z"]], data["y"])
        loopml.register("clf", strong, X=X, client=client)
        loopml.register("clf", weak, X=X, client=client)
        promote("clf", 1, to="production", client=client)
        promote("clf", 2, to="production", client=client, reason="try the weak one")

        suite, _ = loopml.create_suite(
            "holdout",
            data=data,
            target="y",
            task="binary",
            slices=["site"],
            features=["x", "z"],
            client=client,
        )
        suite.evaluate(strong, resamples=100)
        suite.evaluate(weak, resamples=100)
    return World(client, root, runs, adhoc, text_digest, csv_digest, html_digest)


@contextmanager
def serving(client: Any, **options: Any) -> Iterator[httpx.Client]:
    """``create_app(client)`` on uvicorn on a free loopback port, and an httpx client on it."""
    from loopml.server.app import create_app
    from loopml.serving.server import serve_background

    with (
        serve_background(create_app(client, **options)) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        yield http


def every_page(http: httpx.Client, url: str, limit: int, **params: Any) -> list[Any]:
    """Follow ``next_offset`` from 0; asserts each page is at most ``limit`` items."""
    items: list[Any] = []
    offset: int | None = 0
    while offset is not None:
        got = http.get(url, params={**params, "limit": limit, "offset": offset})
        assert got.status_code == 200, got.text
        body = got.json()
        assert len(body["items"]) <= limit and body["offset"] == offset
        items += body["items"]
        offset = body["next_offset"]
    return items


def detail(response: httpx.Response) -> str:
    """The error message(s) of a 4xx body, which must have the API's one shape."""
    body = response.json()
    assert set(body) == {"detail"} and body["detail"], body
    for item in body["detail"]:
        assert set(item) >= {"loc", "msg", "type"}, item
    return " ".join(item["msg"] for item in body["detail"])
