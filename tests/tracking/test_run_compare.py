"""What the run and compare pages are built from: the comparison rows (shared with
``loopml runs compare``), the overlaid metric chart, the run DAG with status, duration and
"cached", and bounded artifact previews."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pandas as pd

import loopml
from loopml import pipeline, step
from loopml.tracking.charts import dag_svg, step_edges, svg_lines
from loopml.tracking.client import default_client
from loopml.tracking.compare import comparison_rows, differs, load_runs, shared_metrics
from loopml.tracking.preview import preview

SVG = "{http://www.w3.org/2000/svg}"


def _run(alpha: float, loss: list[float]) -> str:
    with loopml.start_run("sweep") as run:
        loopml.log_params({"alpha": alpha, "seed": 0})
        for i, v in enumerate(loss):
            loopml.log_metric("loss", v, step=i)
        return run.id


def test_comparison_rows_flag_what_differs_and_shared_metrics_order_plain_keys_first() -> None:
    a, b = _run(0.5, [3.0, 2.0, 1.0]), _run(0.05, [3.0, 1.5])
    client = default_client()
    records = load_runs(client, [a, b, a])  # a run named twice is compared once
    assert [r.id for r in records] == [a, b]
    rows = dict(comparison_rows(records, duration=lambda s: "x"))
    assert rows["params.alpha"] == ["0.5", "0.05"] and differs(rows["params.alpha"])
    assert not differs(rows["params.seed"]) and not differs(rows["duration"])
    assert rows["metrics.loss"] == [1.0, 1.5]
    assert differs([1.0, None]) and not differs([None, None])
    assert shared_metrics(records) == ["loss"]


def test_svg_lines_overlays_one_series_per_run_with_a_legend_and_escapes_labels() -> None:
    svg = svg_lines(
        "loss",
        [("run<1>", list(range(1000)), [1 / (i + 1) for i in range(1000)]), ("b", [0, 5], [1, 0])],
    )
    root = ET.fromstring(svg)
    series = root.findall(f"{SVG}g[@class='series']")
    assert [g.get("data-series") for g in series] == ["run<1>", "b"]
    assert len(series[0].find(f"{SVG}polyline").get("points").split()) <= 400
    assert "run&lt;1&gt;" in svg and "<1>" not in svg
    # One value per run: a dot per run, side by side, each labelled with its value.
    dots = ET.fromstring(svg_lines("rmse", [("a", [0], [56.9]), ("b", [0], [55.8])]))
    xs = [float(c.get("cx")) for c in dots.iter(f"{SVG}circle")]
    assert len(xs) == 2 and xs[0] < xs[1]
    assert "no data" in svg_lines("empty", [("a", [], [])])


@step
def numbers(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": range(n), "label": [f"row {i}" for i in range(n)]})


@step
def summary(frame: pd.DataFrame) -> dict[str, int]:
    return {"rows": len(frame), "total": int(frame["x"].sum())}


@pipeline
def counted(n: int = 50):
    return summary(numbers(n))


def test_a_run_dag_shows_status_duration_and_cached_and_previews_are_bounded() -> None:
    counted(n=50)
    run = counted(n=50)  # every step from the cache
    client = default_client()
    steps = client.steps(run.id)
    links = client.links(run=run.id)
    assert step_edges(steps, links) == [("numbers", "summary")]
    svg = dag_svg(
        [s.name for s in steps],
        step_edges(steps, links),
        status={s.name: s.status for s in steps},
        cached={s.name for s in steps if s.cached},
        durations={s.name: s.wall_s for s in steps},
        links={s.name: f"#step-{s.name}" for s in steps},
    )
    root = ET.fromstring(svg)
    details = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "detail"]
    assert len(details) == 2 and all("succeeded" in d and "cached" in d for d in details)
    assert len(list(root.iter(f"{SVG}a"))) == 2

    by_name = {link.name: client.artifact(link.digest) for link in links}
    table = preview(client, by_name["numbers"], rows=20)
    assert table is not None and table.kind == "table"
    assert table.columns == ["x", "label"] and len(table.rows) == 20
    assert table.total_rows == 50 and table.clipped and table.rows[3] == ["3", "row 3"]
    text = preview(client, by_name["summary"])
    assert text is not None and text.kind == "text"
    assert json.loads(text.text) == {"rows": 50, "total": 1225} and "\n" in text.text
    big = client.store_value("x" * 10_000)
    clipped = preview(client, big, limit=100)
    assert clipped is not None and clipped.clipped and len(clipped.text) == 100
    assert preview(client, client.store_value(b"\x00\x01")) is None  # bytes: no preview
