"""``loopml data``: versions, profiles, validation and drift from the real command line.

Each bad input (a ragged or non-UTF-8 CSV, an empty file, a missing path, a name that is a
path or a reference, an unknown version) exits 1 with a message naming the thing and the
fix, no traceback, and nothing recorded: the datasets that existed are untouched.
"""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _cli_helpers import ENV, assert_error, cli, cli_json, tmpfs

from cli_runner import run_cli
from loopml.data.datasets import dataset
from loopml.tracking.client import Client

HEADER = "turbine,power,serviced\n"
os_random = os.urandom


def table(rows: int = 120, shift: float = 0.0, turbines: int = 5) -> str:
    lines = [f"T{i % turbines},{(i * 37) % 100 / 10 + shift:.2f},{i % 3 == 0}" for i in range(rows)]
    return HEADER + "\n".join(lines) + "\n"


@pytest.fixture
def csv(project: Path) -> Path:
    path = project / "turbines.csv"
    path.write_text(table())
    return path


def versions(project: Path) -> list[dict[str, object]]:
    result = run_cli("data", "versions", "turbines", "--json", cwd=project)
    return json.loads(result.stdout) if result.returncode == 0 else []


def test_add_twice_is_one_version_and_a_new_file_the_next(project: Path, csv: Path) -> None:
    first = cli_json(project, "data", "add", str(csv), "--name", "turbines")
    assert (first["ref"], first["created"], first["rows"], first["columns"]) == (
        "turbines@1",
        True,
        120,
        3,
    )
    again = cli(project, "data", "add", str(csv), "--name", "turbines")
    assert "Unchanged: already turbines@1" in again.stdout
    csv.write_text(table(shift=5.0))
    assert cli_json(project, "data", "add", str(csv), "--name", "turbines")["ref"] == "turbines@2"
    listed = versions(project)
    assert [v["ref"] for v in listed] == ["turbines@1", "turbines@2"]
    assert [v["runs"] for v in listed] == [[], []]
    assert [d["ref"] for d in cli_json(project, "data", "list")] == ["turbines@2"]

    out = project / "old.csv"
    cli(project, "data", "get", "turbines@1", "-o", str(out))
    assert out.read_text() == table()  # the exact bytes
    assert_error(run_cli("data", "get", "turbines@2", "-o", str(out), cwd=project), "--force")
    assert out.read_text() == table()
    cli(project, "data", "get", "turbines@2", "-o", str(out), "--force")
    assert out.read_text() == table(shift=5.0)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.tags.append(tag)


def test_show_prints_the_stored_profile_and_writes_a_page(project: Path, csv: Path) -> None:
    cli(project, "data", "add", str(csv), "--name", "turbines")
    shown = cli(project, "data", "show", "turbines@1", env={"COLUMNS": "140"}).stdout
    assert "120 rows × 3 columns" in shown and "power" in shown and "T0 20%" in shown
    profile = cli_json(project, "data", "show", "turbines")
    power = next(c for c in profile["columns"] if c["name"] == "power")
    assert (power["min"], power["max"], power["missing"]) == (0.0, 9.9, 0)
    page = project / "turbines.html"
    cli(project, "data", "show", "turbines", "--html", str(page))
    parser = _Tags()
    parser.feed(page.read_text())
    assert "svg" in parser.tags and "script" not in parser.tags  # charts, no scripts or CDN
    assert "http://" not in page.read_text().replace("http://www.w3.org/2000/svg", "")


def test_validate_exits_1_on_errors_and_names_each_violation(project: Path, csv: Path) -> None:
    cli(project, "data", "add", str(csv), "--name", "turbines")
    schema = project / "turbines.schema.toml"
    cli(project, "data", "infer-schema", "turbines@1", "-o", str(schema))
    assert "[columns.power]" in schema.read_text() or '[columns."power"]' in schema.read_text()
    assert_error(
        run_cli("data", "infer-schema", "turbines@1", "-o", str(schema), cwd=project), "--force"
    )

    good = project / "good.csv"
    good.write_text(table(rows=50, shift=0.1))
    assert cli_json(project, "data", "validate", str(good), "--schema", str(schema))["ok"] is True

    bad = project / "bad.csv"
    bad.write_text(table(rows=50) + "T9,500.0,True\nT1,,False\n")
    result = run_cli("data", "validate", str(bad), "--schema", str(schema), "--json", cwd=project)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    found = {(v["column"], v["expectation"]): v for v in report["violations"]}
    assert found[("power", "range")]["count"] == 1
    assert found[("power", "range")]["examples"][0]["row"] == 50
    assert found[("turbine", "categories")]["count"] == 1
    text = run_cli("data", "validate", str(bad), "--schema", str(schema), cwd=project)
    assert text.returncode == 1 and "power" in text.stdout and "Traceback" not in text.stderr
    assert versions(project)[0]["validations"] == []  # checking a file records nothing


def test_validating_a_version_is_recorded_with_it(project: Path, csv: Path) -> None:
    cli(project, "data", "add", str(csv), "--name", "turbines")
    schema = project / "turbines.schema.toml"
    cli(project, "data", "infer-schema", "turbines@1", "-o", str(schema))
    cli(project, "data", "validate", "turbines@1", "--schema", str(schema))
    csv.write_text(table(rows=30) + "T9,500.0,True\n")
    cli(project, "data", "add", str(csv), "--name", "turbines")
    failed = run_cli("data", "validate", "turbines@2", "--schema", str(schema), cwd=project)
    assert failed.returncode == 1, failed.stderr

    listed = {v["ref"]: v["validations"] for v in versions(project)}
    assert [(c["ok"], c["errors"]) for c in listed["turbines@1"]] == [(True, 0)]
    assert [(c["ok"], c["errors"]) for c in listed["turbines@2"]] == [(False, 2)]
    table_text = cli(project, "data", "versions", "turbines", env={"COLUMNS": "160"}).stdout
    assert "2 errors" in table_text and " ok " in table_text
    # the schema checked against and the full report are kept (gc leaves them alone)
    cli(project, "gc", "--grace", "0")
    report = cli_json(project, "artifacts", "show", listed["turbines@2"][0]["report_digest"])
    assert report["digest"] == listed["turbines@2"][0]["report_digest"]


def test_diff_lists_schema_changes_and_the_drifted_column_first(project: Path, csv: Path) -> None:
    cli(project, "data", "add", str(csv), "--name", "turbines")
    moved = project / "moved.csv"
    rows = [f"T{i % 5},{(i * 37) % 100 / 10 + 50:.2f},{i % 3 == 0},x" for i in range(120)]
    moved.write_text("turbine,power,serviced,extra\n" + "\n".join(rows) + "\n")
    report = cli_json(project, "data", "diff", "turbines@1", str(moved))
    assert report["schema"]["added"] == [["extra", "string"]]
    order = [(c["column"], c["drifted"]) for c in report["columns"]]
    # the new column first (a schema change), then the moved one; the rest did not move
    assert order == [("extra", True), ("power", True), ("serviced", False), ("turbine", False)]


def test_a_version_a_run_read_cannot_be_removed(project: Path, csv: Path) -> None:
    cli(project, "data", "add", str(csv), "--name", "turbines")
    client = Client().open()
    with client.start_run("explore") as run:
        dataset("turbines@1").path(client)
    client.close()
    lineage = cli(project, "lineage", "turbines@1").stdout
    assert f"explore#1 ({run.id[:8]}" in lineage
    shown = cli(project, "runs", "show", "explore#1").stdout
    assert "datasets read" in shown and "turbines@1" in shown
    assert_error(
        run_cli("data", "rm", "turbines@1", cwd=project), f"turbines@1 is read by run {run.id[:8]}"
    )
    cli(project, "runs", "delete", "explore#1", "-y")
    assert "Removed turbines@1" in cli(project, "data", "rm", "turbines@1").stdout
    assert versions(project) == []


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b"a,b\n1,2\n3,4,5\n", ["bad.csv', line 3, column 3: got 3 fields; expected 2"]),
        ("city,n\nMünchen,1\n".encode("latin-1"), ["bad.csv', line 2", "not UTF-8", "iconv"]),
        (b"", ["bad.csv': is empty"]),
    ],
    ids=["ragged", "latin-1", "empty"],
)
def test_a_table_that_cannot_be_read_adds_nothing(
    project: Path, csv: Path, content: bytes, needles: list[str]
) -> None:
    cli(project, "data", "add", str(csv), "--name", "turbines")
    bad = project / "bad.csv"
    bad.write_bytes(content)
    assert_error(run_cli("data", "add", str(bad), "--name", "turbines", cwd=project), *needles)
    assert [v["ref"] for v in versions(project)] == ["turbines@1"]  # nothing else recorded


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["add", "nope.csv", "--name", "x"], ["No file or folder 'nope.csv'", "Check the path"]),
        (["add", "turbines.csv", "--name", "a/b"], ["Dataset name 'a/b'", "no '/', '..'"]),
        (["add", "turbines.csv", "--name", ".."], ["Dataset name '..'"]),
        (["add", "turbines.csv", "--name", "a b"], ["Dataset name 'a b'"]),
        (["add", "turbines.csv", "--name", "a@b"], ["Dataset name 'a@b'"]),
        (["show", "turbines@9"], ["No version 'turbines@9'", "turbines has versions @1"]),
        (["get", "ghost"], ["No dataset named 'ghost'", "loopml data list"]),
        (["versions", "ghost"], ["No dataset named 'ghost'"]),
        (["rm", "turbines@newest"], ["after '@' must be 'latest'"]),
    ],
)
def test_bad_names_paths_and_versions_are_named(
    project: Path, csv: Path, args: list[str], needles: list[str]
) -> None:
    cli(project, "data", "add", str(csv), "--name", "turbines")
    assert_error(run_cli("data", *args, cwd=project), *needles)
    assert [v["ref"] for v in versions(project)] == ["turbines@1"]


def test_a_full_disk_during_add_records_nothing_and_keeps_what_was_there(
    project: Path, csv: Path
) -> None:
    """R10 for datasets: ``.loopml`` on a 4 MB tmpfs, then an 8 MB file."""
    with tmpfs(project / ".loopml", "4m"):
        cli(project, "data", "add", str(csv), "--name", "turbines")
        big = project / "big.bin"
        big.write_bytes(os_random(8 * 2**20))
        full = run_cli("data", "add", str(big), "--name", "big", cwd=project, env=ENV)
        assert_error(full, "disk full (ENOSPC)", "of 8,388,608")
        assert list((project / ".loopml" / "blobs" / "tmp").iterdir()) == []  # no partial file
        assert [d["ref"] for d in cli_json(project, "data", "list")] == ["turbines@1"]
        assert cli_json(project, "fsck")["problems"] == []
        out = project / "back.csv"
        cli(project, "data", "get", "turbines@1", "-o", str(out))
        assert out.read_text() == table()


def test_fsck_checks_every_version_and_a_damaged_one_is_never_handed_out(
    project: Path, csv: Path
) -> None:
    """R13 for datasets: a flipped byte in a version's blob is found and never read."""
    version = cli_json(project, "data", "add", str(csv), "--name", "turbines")
    digest = version["digest"]
    blob = project / ".loopml" / "blobs" / "objects" / digest[:2] / digest[2:]
    data = bytearray(blob.read_bytes())
    data[10] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    checked = run_cli("fsck", "--json", cwd=project)
    assert checked.returncode == 1
    problems = json.loads(checked.stdout)["problems"]
    assert [(p["kind"], p["digest"]) for p in problems] == [("corrupt", version["digest"])]
    assert_error(
        run_cli("data", "get", "turbines@1", "-o", str(project / "x.csv"), cwd=project),
        version["digest"][:12],
    )
    assert not (project / "x.csv").exists()
