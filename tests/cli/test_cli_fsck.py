"""``loopml fsck`` on a damaged store (issue 12 §1 "A corrupted blob heals", §1b fsck).

A damaged SQLite file is reported as a ``database`` problem with exit 1 (it used to crash
with "Internal error", exit 2). ``fsck --repair`` says, for every problem, what it did or
why it could not; the next ``fsck`` lists only what cannot be repaired; re-running the
pipeline and ``gc`` then bring the store back to clean.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _cli_helpers import cli, cli_json, dead_pid, write_pipelines

from cli_runner import run_cli
from loopml.tracking.client import Client

PAGE = 4096


def _fsck_json(project: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("fsck", *args, "--json", cwd=project)
    assert "Traceback" not in result.stderr and "Internal error" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def _problems(report: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((p["kind"], p["digest"] or Path(p["path"]).name) for p in report["problems"])


@pytest.mark.parametrize("where", ["middle", "header"])
def test_fsck_reports_a_damaged_sqlite_file_as_a_database_problem(
    project: Path, where: str
) -> None:
    client = Client().open()
    for i in range(30):
        with client.start_run("job") as run:
            run.log_params({f"p{k}": f"value {i} {k}" * 5 for k in range(40)})
            run.log_metrics({f"m{k}": i + k for k in range(40)})
    client.close()
    db = project / ".loopml" / "store.db"
    # A compact copy with every commit in the file itself (no WAL) and no free pages, so
    # that the damaged pages are ones the database uses.
    packed = db.with_name("packed.db")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("VACUUM INTO ?", (str(packed),))
    for leftover in ("store.db-wal", "store.db-shm"):
        db.with_name(leftover).unlink(missing_ok=True)
    os.replace(packed, db)
    pages = db.stat().st_size // PAGE
    assert pages > 40
    first = pages // 2 if where == "middle" else 0
    garbage = random.Random(0).randbytes(4 * PAGE)
    with open(db, "r+b") as f:
        f.seek(first * PAGE)
        f.write(garbage)
    code, report = _fsck_json(project)
    assert code == 1
    assert [p["kind"] for p in report["problems"]] == ["database"], report
    assert report["problems"][0]["path"] == str(db)
    text = run_cli("fsck", cwd=project)
    assert text.returncode == 1 and "database" in text.stdout, text.stdout + text.stderr
    assert "Traceback" not in text.stderr and "Internal error" not in text.stderr


def _said(out: str) -> dict[str, str]:
    """Each problem's text (its lines joined, wrapped or not), by kind."""
    blocks = re.split(r"\n(?=\s*(?:corrupt|missing|orphan|temp|dangling|database) )", out)
    return {block.split()[0]: " ".join(block.split()) for block in blocks if block.strip()}


def test_fsck_repair_says_what_it_did_and_the_next_fsck_lists_only_what_remains(
    project: Path,
) -> None:
    write_pipelines(project)
    cli(project, "run", "small")
    outputs = {
        a["name"]: a["digest"]
        for a in cli_json(project, "runs", "show", "small#1")["artifacts"]
        if a["direction"] == "output"
    }
    blobs = project / ".loopml" / "blobs"
    corrupt, missing = outputs["make"], outputs["total"]
    damaged = blobs / "objects" / corrupt[:2] / corrupt[2:]
    os.chmod(damaged, 0o644)
    data = bytearray(damaged.read_bytes())
    data[0] ^= 0x01  # same size, different content
    damaged.write_bytes(bytes(data))
    gone = blobs / "objects" / missing[:2] / missing[2:]
    gone.unlink()
    client = Client().open()
    orphan = client.artifacts.put_bytes(b"bytes no row points to").digest
    client.close()
    temp = blobs / "tmp" / f"{dead_pid()}.12345.{'ab' * 16}.tmp"
    temp.parent.mkdir(exist_ok=True)
    temp.write_bytes(b"half a blob")

    code, found = _fsck_json(project)
    assert code == 1
    assert _problems(found) == sorted(
        [("corrupt", corrupt), ("missing", missing), ("orphan", orphan), ("temp", temp.name)]
    )
    assert temp.exists()  # a plain fsck only reads

    repaired = run_cli("fsck", "--repair", cwd=project)
    assert repaired.returncode == 1  # the lost blobs have no copy anywhere
    said = _said(repaired.stdout)
    assert "→ removed the damaged blob (no intact copy exists)" in said["corrupt"]
    assert "dropped" in said["corrupt"] and "the step that made it runs again" in said["corrupt"]
    assert "→ no copy exists" in said["missing"]
    assert "→ left for `loopml gc`" in said["orphan"]
    assert "→ repaired: removed it" in said["temp"]
    assert not temp.exists()

    code, after = _fsck_json(project)
    assert code == 1
    # What --repair cannot do: recreate lost blobs (the corrupt one is now missing too)
    # and delete blobs (that is gc's job).
    assert _problems(after) == sorted(
        [("missing", corrupt), ("missing", missing), ("orphan", orphan)]
    )

    again = cli_json(project, "run", "small")  # the dropped cache entries make the steps run
    assert again["cached_steps"] == 0
    cli(project, "gc", "--grace", "0")
    code, clean = _fsck_json(project)
    assert (code, clean["problems"]) == (0, [])
    assert clean["verified"] == 2
    assert cli_json(project, "lineage", "small#1")["steps"][0]["outputs"] == {"make": corrupt}
