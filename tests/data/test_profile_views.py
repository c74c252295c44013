"""The views of a profile: HTML that parses strictly and escapes data, a Rich table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
from rich.console import Console

from loopml.data.profile import profile
from loopml.data.profile_view import sparkline

HOSTILE = '<script>alert("x")</script> & [bold]co[/bold]'


def hostile_table() -> pa.Table:
    return pa.table(
        {
            HOSTILE: [1.0, 2.0, None, 4.0],
            "ünïcode ✓": ["<b>", "&amp;", "", None],
            "flag": [True, False, True, True],
            "when": pa.array([0, 1, 2, None], pa.timestamp("ms")),
            "nothing": pa.array([None] * 4),
        }
    )


class TagBalance(HTMLParser):
    """Checks every opened tag is closed in order and records tags and text."""

    VOID = {"meta", "br", "img", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.tags.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: object) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, f"</{tag}> closes {self.stack}"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_page_is_well_formed_self_contained_and_escaped(tmp_path: Path) -> None:
    p = profile(hostile_table())
    out = tmp_path / "report.html"
    page = p.to_html(out, title="Profile <of> data")
    assert out.read_text(encoding="utf-8") == page
    checker = TagBalance()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    assert "script" not in checker.tags and "link" not in checker.tags
    text = "".join(checker.text)
    assert HOSTILE in text and "<b>" in text and "Profile <of> data" in text
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page
    # Also strict XML: void elements are self-closed and only numeric entities are used.
    root = ET.fromstring(page.split("\n", 1)[1])
    svgs = list(root.iter("{http://www.w3.org/2000/svg}svg"))
    assert len(svgs) == 3  # a histogram, string bars, boolean bars; none for the rest
    assert len(list(root.iter("tr"))) == 1 + 5


def test_notebook_display_is_one_table() -> None:
    fragment = profile(hostile_table())._repr_html_()
    root = ET.fromstring(fragment)
    assert [child.tag for child in root] == ["style", "table"]  # styled in a notebook too
    assert "4 rows × 5 columns" in "".join(root.itertext())


def test_rich_table_renders_names_literally() -> None:
    console = Console(record=True, width=160, color_system=None)
    console.print(profile(hostile_table()))
    text = console.export_text()
    assert '<script>alert("x")' in text and "[bold]co[/bold]" in text  # not read as markup
    assert "ünïcode ✓" in text and "datetime" in text and "4 rows × 5 columns" in text
    assert "true 75% · false 25%" in text


def test_sparkline_scales_to_the_tallest_bin() -> None:
    assert sparkline((0, 1, 2, 4)) == " ▃▅█"
    assert sparkline((0, 0)) == ""
    assert sparkline((1000, 1)) == "█▁"
