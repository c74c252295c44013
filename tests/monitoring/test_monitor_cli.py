"""``loopml monitors`` and ``loopml monitor …`` through the real console script."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from monitor_world import DRIFT_FROM, T0, WINDOWS, Watched

from cli_runner import run_cli


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_add_backfill_show_report_pause_and_remove(watched: Watched) -> None:
    root = watched.root
    (root / "rules.toml").write_text(
        '[rules]\nradius = \'psi("mean_radius") > 0.25 for 2 windows\'\nquiet = "rows < 10"\n'
    )
    added = run_cli(
        "monitor", "add", "live", "--model", "cancer@production", "--window", "1h",
        "--rules", "rules.toml", "--from", _iso(T0 + WINDOWS * 3600), "--json", cwd=root,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    doc = json.loads(added.stdout)
    assert doc["window_s"] == 3600 and doc["reference"] == "training"
    assert doc["origin"] == T0 + WINDOWS * 3600
    listed = json.loads(run_cli("monitors", "--json", cwd=root).stdout)
    assert [(m["name"], m["status"], m["alerts"]) for m in listed] == [("live", "waiting", 0)]

    filled = run_cli(
        "monitor", "backfill", "live", "--from", _iso(T0), "--to", _iso(T0 + WINDOWS * 3600),
        "--json", cwd=root,
    )  # fmt: skip
    assert filled.returncode == 0, filled.stderr
    did = json.loads(filled.stdout)
    assert len(did["evaluated"]) == WINDOWS
    assert sorted(a["window_start"] for a in did["alerts"]) == [
        T0 + k * 3600 for k in range(DRIFT_FROM + 1, WINDOWS)
    ]
    again = json.loads(
        run_cli(
            "monitor",
            "backfill",
            "live",
            "--from",
            _iso(T0),
            "--to",
            _iso(T0 + WINDOWS * 3600),
            "--json",
            cwd=root,
        ).stdout  # fmt: skip
    )
    assert again["evaluated"] == [] and again["alerts"] == [] and again["up_to_date"] == WINDOWS

    shown = run_cli("monitor", "show", "live", "--json", cwd=root)
    windows = json.loads(shown.stdout)["windows"]
    assert [sorted(w["flagged"]) for w in windows] == [[]] * DRIFT_FROM + [["mean_radius"]] * (
        WINDOWS - DRIFT_FROM
    )
    text = run_cli("monitor", "show", "live", cwd=root, env={"COLUMNS": "200"})
    assert text.returncode == 0, text.stderr
    assert "mean_radius" in text.stdout and "radius" in text.stdout
    assert 'psi("mean_radius") > 0.25 for 2 windows' in text.stdout  # markup not eaten
    table = run_cli("monitors", cwd=root, env={"COLUMNS": "200"})
    assert "alert (radius)" in table.stdout

    report = root / "report.html"
    made = run_cli("monitor", "report", "live", "--html", str(report), cwd=root)
    assert made.returncode == 0, made.stderr
    page = report.read_text()
    assert page.count("<svg") >= 4 and "mean_radius" in page and "<script" not in page

    assert run_cli("monitor", "pause", "live", cwd=root).returncode == 0
    paused = run_cli("monitor", "run", "live", cwd=root)
    assert "paused" in paused.stdout
    assert run_cli("monitor", "resume", "live", cwd=root).returncode == 0
    assert run_cli("monitor", "remove", "live", cwd=root).returncode == 0
    assert json.loads(run_cli("monitors", "--json", cwd=root).stdout) == []


def test_mistakes_get_a_clear_error_and_exit_1(watched: Watched) -> None:
    root = watched.root
    (root / "bad.toml").write_text('[rules]\nfine = "rows < 10"\nodd = "psi(age) > 0.2"\n')
    (root / "pipelines.py").write_text(
        "from loopml import pipeline, step\n\n@step\ndef one() -> int:\n    return 1\n\n"
        "@pipeline\ndef train():\n    return one()\n"
    )
    cases = [
        (["monitor", "add", "m", "--model", "cancer@production", "--rules", "bad.toml"],
         "line 3: rule 'odd'"),
        (["monitor", "add", "m", "--model", "cancer@production", "--window", "soon"],
         "expected a duration"),
        (["monitor", "add", "m", "--model", "cancer@production", "--on-alert", "email:me"],
         "retrain:PIPELINE"),
        (["monitor", "add", "m", "--model", "cancer@production", "--on-alert", "retrain:nope"],
         "Unknown pipeline 'nope'; this project has ['train']"),
        (["monitor", "add", "m", "--model", "cancer@production", "--from", "yesterday"],
         "ISO 8601"),
        (["monitor", "run", "lve"], "Monitor 'lve': not found"),
        (["monitor", "show", "m"], "not found"),
    ]  # fmt: skip
    for args, words in cases:
        result = run_cli(*args, cwd=root)
        assert result.returncode != 0, args
        assert words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    for command in ("add", "run", "backfill", "show", "report", "pause", "resume", "remove"):
        helped = run_cli("monitor", command, "--help", cwd=root)
        assert helped.returncode == 0 and "Example" in helped.stdout, command
