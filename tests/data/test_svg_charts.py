"""The SVG charts of the HTML reports: well-formed, sized by the data, and safe with hostile labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from loopml.data.charts import bars_svg, histogram_svg

SVG = "{http://www.w3.org/2000/svg}"


def bar_heights(svg: str) -> list[float]:
    return [float(r.get("height", "0")) for r in ET.fromstring(svg).iter(f"{SVG}rect")]


def test_histogram_bars_are_proportional_to_counts() -> None:
    heights = bar_heights(histogram_svg([0, 1, 2, 3], [1, 2, 4], height=80))
    assert heights == [20.0, 40.0, 80.0]


def test_an_overlay_compares_shares_not_counts() -> None:
    # the same shape at ten times the size draws the same bars
    heights = bar_heights(histogram_svg([0, 1, 2], [1, 3], overlay=[10, 30], height=80))
    assert heights[:2] == heights[2:] == [26.67, 80.0]  # shares 0.25 and 0.75, tallest full


def test_labels_are_escaped_so_data_cannot_inject_markup() -> None:
    label = '<script>alert("x")</script> & co'
    svg = bars_svg([label], [3.0], title=label)
    root = ET.fromstring(svg)  # still one well-formed document
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    assert label[:23] + "…" in "".join(root.itertext())


def test_mismatched_bins_are_refused_with_the_counts() -> None:
    with pytest.raises(ValueError, match="3 edges for 3 bins"):
        histogram_svg([0, 1, 2], [1, 2, 3])
