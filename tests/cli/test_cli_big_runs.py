"""Big runs stay quick to show, and run tables never drop columns silently (issue 12 §1, §1b).

``runs show`` of a run with a 10 MB param and tag used to take > 600 s (Rich split the
whole value into lines), and of a run with 1,000,000 metric keys > 300 s (one query per
key). Now long values are clipped for display and say how long they are, long lists end
with "… and N more", and ``--json`` still prints everything. pytest-timeout and the
subprocess timeout (300 s, against > 600 s before) are the guard; nothing here asserts a
duration.

``loopml runs`` fits as many columns as the width allows (``COLUMNS``, else 200 when
piped) and names the ones it left out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from _cli_helpers import assert_error

from cli_runner import run_cli

MB10 = 10_000_000
KEYS = 1_000_000


def _run(project: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """``loopml ARGS`` on the store the ``client`` fixture set in the environment."""
    result = run_cli(*args, cwd=project, env=env, timeout=300)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result


def test_runs_show_clips_a_10_mb_param_and_tag_and_json_keeps_them(
    client: Any, project: Path
) -> None:
    huge_param, huge_tag = "p" * MB10, "t" * MB10
    with client.start_run("big") as run:
        run.log_params({"huge": huge_param, "small": 1})
        run.set_tag("note", huge_tag)
    shown = _run(project, "runs", "show", "big#1").stdout
    assert shown.count("… (10,000,000 characters; see --json)") == 2, shown[:3000]
    assert "small=1" in shown
    assert len(shown) < 10_000
    full = json.loads(_run(project, "runs", "show", "big#1", "--json").stdout)
    assert full["params"]["huge"] == huge_param and full["tags"]["note"] == huge_tag
    listed = _run(project, "runs").stdout
    assert "(10,000,000 characters; see --json)" in listed and len(listed) < 10_000


@pytest.mark.timeout(900)  # about 30 s on 2 idle cores; far more on a busy machine
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_runs_show_of_a_run_with_a_million_metric_keys(client: Any, project: Path) -> None:
    run = client.start_run("many")
    run.end()
    rows = [(run.id, f"m{i:07d}", 0, float(i), 0.0) for i in range(KEYS)]
    rows.append((run.id, "m0000000", 1, 5.0, 1.0))  # one series with two points
    client.metadata.db.write(
        lambda tx: tx.executemany(
            "INSERT INTO metrics (run_id, key, step, value, timestamp) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
    )
    latest = [r[:4] for r in rows[1:KEYS]] + [rows[KEYS][:4]]
    client.metadata.db.write(
        lambda tx: tx.executemany(
            "INSERT INTO latest_metrics (run_id, key, step, value) VALUES (?, ?, ?, ?)", latest
        )
    )
    shown = _run(project, "runs", "show", "many#1").stdout
    assert "… and 999,900 more (--json)" in shown, shown[-3000:]
    assert "m0000099=99" in shown and "m0000100" not in shown
    assert re.search(r"m0000000 \S+\s+0 → 5 \(2 points\)", shown), shown[-3000:]
    assert len(shown) < 20_000
    full = json.loads(_run(project, "runs", "show", "many#1", "--json").stdout)
    assert len(full["metrics"]) == KEYS
    assert full["metrics"]["m0000000"] == 5.0 and full["metrics"]["m0999999"] == 999_999.0


# -- columns ---------------------------------------------------------------------------------

ATTRIBUTES = ["run", "id", "status", "started", "duration", "cost"]
PARAMS = [f"params.p{i:02d}" for i in range(40)]
METRICS = [f"metrics.m{i:02d}" for i in range(40)]


@pytest.fixture
def wide(project: Path) -> Any:
    """Two runs, each with 40 params and 40 metrics, in the project's own (SQLite) store.

    The table is drawn the same way whatever the backend; the backends' search is tested
    in tests/store.
    """
    from loopml.tracking.client import Client

    client = Client().open()
    for r in range(2):
        with client.start_run("wide") as run:
            run.log_params({name[7:]: f"value-{r}-{name[8:]}" for name in PARAMS})
            run.log_metrics({name[8:]: r + i / 10 for i, name in enumerate(METRICS)})
    client.close()
    return client


@pytest.mark.parametrize("columns", ["100", None], ids=["COLUMNS=100", "piped"])
def test_runs_names_the_columns_that_did_not_fit(
    wide: Any, project: Path, columns: str | None
) -> None:
    width = int(columns) if columns else 200
    out = _run(project, "runs", env={"COLUMNS": columns} if columns else None).stdout
    lines = out.rstrip("\n").splitlines()
    assert all(len(line.rstrip()) <= width for line in lines), out
    shown = lines[0].split()
    assert [row.split()[0] for row in lines[1:3]] == ["wide#2", "wide#1"]
    note = " ".join(line.strip() for line in lines[3:])
    found = re.fullmatch(
        r"(\d+) more columns did not fit: (.*?)(?:, … \((\d+) in all\))?\. Choose columns with "
        r"--columns, widen the terminal \(COLUMNS=…\), or use --json\.",
        note,
    )
    assert found, out
    expected = [*ATTRIBUTES, *PARAMS, *METRICS]
    omitted = [name for name in expected if name not in shown]
    assert set(shown) <= set(expected) and "run" in shown
    assert int(found[1]) == len(omitted) == len(expected) - len(shown)
    assert found[2].split(", ") == omitted[:8]


def test_runs_columns_shows_exactly_the_chosen_columns(wide: Any, project: Path) -> None:
    out = _run(project, "runs", "--columns", "params.p03,metrics.m07").stdout
    header, *rows = out.strip().splitlines()
    assert header.split() == ["params.p03", "metrics.m07"]
    assert [row.split() for row in rows] == [["value-1-03", "1.7"], ["value-0-03", "0.7"]]
    assert "did not fit" not in out


def test_runs_columns_with_an_unknown_column_suggests_the_closest(wide: Any, project: Path) -> None:
    result = run_cli("runs", "--columns", "parms.p03,metrics.m07", cwd=project)
    assert_error(result, "no column 'parms.p03'", "Did you mean 'params.p03'?")
