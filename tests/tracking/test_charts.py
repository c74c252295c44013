"""Pictures users look at: metric sparklines and curves, the DAG of a pipeline and of a run."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import loopml
from loopml import pipeline, step
from loopml.tracking.charts import dag_svg, sparkline, svg_line

SVG = "{http://www.w3.org/2000/svg}"


def test_sparkline_rises_with_the_series_and_marks_nan() -> None:
    line = sparkline([0.0, 1.0, 2.0, 3.0, math.nan, 7.0])
    assert line[0] == "▁" and line[-1] == "█" and line[4] == " "
    assert list(line[:4]) == sorted(line[:4])
    assert len(sparkline(list(map(float, range(1000))), width=40)) == 40


def test_svg_line_is_valid_svg_naming_the_metric_and_its_last_value() -> None:
    svg = svg_line("loss<x>", list(range(50)), [1 / (i + 1) for i in range(50)])
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert "loss<x>: last 0.02" in root.find(f"{SVG}text").text  # escaped in the markup
    assert len(root.find(f"{SVG}polyline").get("points").split()) == 50
    assert svg_line("one point", [0], [1.0]) == ""


def test_dag_svg_puts_downstream_steps_to_the_right() -> None:
    svg = dag_svg(
        ["load", "a", "b", "join"], [("load", "a"), ("load", "b"), ("a", "join"), ("b", "join")]
    )
    root = ET.fromstring(svg)
    boxes = {
        g.find(f"{SVG}text").text: float(g.find(f"{SVG}rect").get("x"))
        for g in root.iter(f"{SVG}g")
    }
    assert boxes["load"] < boxes["a"] == boxes["b"] < boxes["join"]
    assert len(list(root.iter(f"{SVG}line"))) == 4


@step
def load_numbers(n: int) -> list[float]:
    return [float(i) for i in range(n)]


@step
def total(values: list[float]) -> float:
    for i, v in enumerate(values):
        loopml.log_metric("running", v, step=i)
    return sum(values)


@pipeline
def summed(n: int = 4):
    return total(load_numbers(n))


def test_a_pipeline_dag_and_a_finished_run_display_as_pictures() -> None:
    dag_html = summed.dag(n=3)._repr_html_()
    assert "load_numbers" in dag_html and "<line" in dag_html
    run = summed(n=4)
    page = run._repr_html_()
    assert page.count("<svg") == 2  # the run's DAG (coloured by status) and the metric curve
    assert "#dafbe1" in page  # succeeded steps are green
    assert "running: last 3" in page
