"""``[schedules.NAME]`` in loopml.toml and the store stay consistent (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import run_cli
from loopml.errors import ConflictError
from loopml.scheduler import schedules as lib
from loopml.tracking.client import Client

TOML = """[project]
name = "t"

[schedules.weekly-score]
pipeline = "score"
cron = "0 6 * * MON"
timezone = "Europe/Berlin"
params = {{ region = "north" }}
timeout = "{timeout}"
retries = 2
"""


def test_config_schedules_are_synced_edited_and_removed_with_the_file(project: Path) -> None:
    (project / "loopml.toml").write_text(TOML.format(timeout="2h"))
    client = Client().open()
    report = lib.sync_config(client)
    assert report.added == ("weekly-score",)
    record = client.metadata.schedules.get("weekly-score")
    assert (record.source, record.timeout_s, record.params) == (
        "config",
        7200.0,
        {"region": "north"},
    )
    with pytest.raises(ConflictError, match=r"declared in loopml.toml"):
        lib.remove(client, "weekly-score", by="me")
    refused = run_cli("schedule", "remove", "weekly-score", cwd=project)
    assert refused.returncode == 1 and "edit" in refused.stderr and "loopml.toml" in refused.stderr
    lib.pause(
        client, "weekly-score", by="me"
    )  # allowed, and it stands while the table is unchanged
    assert lib.sync_config(client).changed == ()
    assert client.metadata.schedules.get("weekly-score").paused
    (project / "loopml.toml").write_text(TOML.format(timeout="30m"))
    assert lib.sync_config(client).changed == ("weekly-score",)
    record = client.metadata.schedules.get("weekly-score")
    assert record.timeout_s == 1800.0 and not record.paused and record.generation > 1
    (project / "loopml.toml").write_text('[project]\nname = "t"\n')
    listed = run_cli("schedules", "--json", cwd=project)
    assert listed.returncode == 0 and listed.stdout.strip() == "[]"


def test_a_bad_table_is_reported_and_named(project: Path) -> None:
    (project / "loopml.toml").write_text(TOML.format(timeout="2 hours-ish"))
    report = lib.sync_config(Client().open())
    assert report.added == () and "[schedules.weekly-score]" in report.errors[0]
    assert "'2 hours-ish'" in report.errors[0]
