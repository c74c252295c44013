"""User text (params, tags, metric names) is shown literally: never parsed as Rich markup."""

from __future__ import annotations

from pathlib import Path

import loopml
from cli_runner import run_cli

NASTY = "[/]x[bold red]y[link=http://127.0.0.1/]z"


def test_markup_in_user_values_is_printed_literally(project: Path) -> None:
    for value in (NASTY, "plain"):
        with loopml.start_run("markup") as run:
            run.log_params({"note": value})
            run.set_tag("t", value)
            run.log_metric("m[/]", 1.0)
            run.log_metric("m[/]", 2.0)
    for args in (
        ("runs",),
        ("runs", "show", "markup#1"),
        ("runs", "compare", "markup#1", "markup#2"),
        ("lineage", "markup#1"),
    ):
        result = run_cli(*args, cwd=project)
        assert result.returncode == 0, (args, result.stderr)
        assert "Internal error" not in result.stderr
    shown = run_cli("runs", "show", "markup#1", cwd=project).stdout
    assert NASTY in shown and "m[/]" in shown
    compared = run_cli("runs", "compare", "markup#1", "markup#2", cwd=project).stdout
    assert NASTY in compared
