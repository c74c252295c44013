"""The CLI at the edges (issue 12 §1 and §1b): bad settings, over-long names, hostile artifacts.

Before the fix, ``postgres://…``, ``mysql://…``, a malformed URI and
``LOOPML_HEARTBEAT_SECONDS=abc`` printed "Internal error: this is a bug"; a 300-character
pipeline name on PostgreSQL did too (a raw ``DataError``); and ``loopml artifacts get
DIGEST -o out/`` of a folder artifact built like CPython's ``test_realpath_limit_attack``
(CVE-2025-4517) wrote outside ``out/`` on Python 3.11.7, whose ``filter="data"`` misses it.
Each is now an ``Error:`` line and exit 1, and nothing is written outside ``out/``.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from artifacts.test_safetar import HOSTILE, Member
from cli_runner import run_cli
from loopml import Client

ENV = {"LOOPML_STORE_URI": "", "LOOPML_ARTIFACTS_URI": "", "LOOPML_HEARTBEAT_SECONDS": "0.5"}
PIPELINES = """
from loopml import pipeline, step


@step
def one(x: int) -> int:
    return x + 1


@pipeline
def tiny(x: int = 1):
    return one(x)


@pipeline(name="p" * 300)
def too_long(x: int = 1):
    return one(x)
"""


@pytest.fixture
def cli_project(project: Path) -> Path:
    (project / "loopml.toml").write_text('[project]\nname = "t"\npipelines = ["pipes"]\n')
    (project / "pipes.py").write_text(PIPELINES)
    return project


def assert_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    err = result.stderr
    assert result.returncode == 1, (result.returncode, result.stdout, err)
    assert err.startswith("Error: "), err
    assert "Traceback" not in err and "Internal error" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("mysql://u@h/db", "'mysql'"),
        ("http://x", "'http'"),
        ("sqlite://", "'sqlite://'"),
        ("postgresql://u@h:notaport/db", "notaport"),
        ("postgresql://u@h", "name the database"),
    ],
)
@pytest.mark.parametrize("command", [("runs",), ("run", "tiny"), ("fsck",), ("gc", "--dry-run")])
def test_an_unusable_store_uri_is_an_error_line_and_exit_1(
    cli_project: Path, uri: str, needle: str, command: tuple[str, ...]
) -> None:
    result = run_cli(*command, cwd=cli_project, env={**ENV, "LOOPML_STORE_URI": uri})
    assert_error(result, needle, "'sqlite:///PATH'", "'postgresql://USER@HOST/DB'")
    assert not (cli_project / ".loopml").exists()


@pytest.mark.parametrize("raw", ["abc", "-1", "nan"])
@pytest.mark.parametrize("command", [("runs",), ("run", "tiny")])
def test_a_bad_heartbeat_setting_is_an_error_line_and_exit_1(
    cli_project: Path, raw: str, command: tuple[str, ...]
) -> None:
    result = run_cli(*command, cwd=cli_project, env={**ENV, "LOOPML_HEARTBEAT_SECONDS": raw})
    assert_error(result, "LOOPML_HEARTBEAT_SECONDS", repr(raw))


def test_a_too_long_pipeline_name_is_an_error_line_on_postgres(
    cli_project: Path, postgres: Any
) -> None:
    url = postgres.create_database("t_cli_long_name")
    env = {**ENV, "LOOPML_STORE_URI": url}
    result = run_cli("run", "p" * 300, cwd=cli_project, env=env)
    assert_error(result, "Pipeline name", "at most 200 characters")
    assert "DataError" not in result.stderr and "psycopg" not in result.stderr
    ok = run_cli("run", "tiny", cwd=cli_project, env=env)  # the store is fine afterwards
    assert ok.returncode == 0, ok.stderr
    listed = json.loads(run_cli("runs", "--json", cwd=cli_project, env=env).stdout)
    assert [r["run"] for r in listed] == ["tiny#1"]


# --- a hostile folder artifact exported with -o ---------------------------------------------

CASES = [
    "cve-2025-4517 realpath limit",
    "dot-dot",
    "absolute",
    "symlink absolute",
    "symlink relative outside",
    "hard link outside",
    "write through a symlink listed later",
]


def _tar_bytes(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _listing(root: Path) -> dict[str, Any]:
    """Every path under root except the store and bytecode caches (links not followed), with
    file bytes."""
    found: dict[str, Any] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".loopml", "__pycache__")]  # Python's own cache
        for name in dirs + files:
            full = Path(folder) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                found[rel] = ("link", os.readlink(full))
            elif full.is_file():
                found[rel] = full.read_bytes()
            else:
                found[rel] = "dir"
    return found


def _store_folder_artifact(project: Path, data: bytes) -> str:
    """A ``folder.tar`` artifact as a tampered or imported store would hold it."""
    client = Client().open()
    digest = client.artifacts.put_bytes(data).digest
    client.close()
    db = sqlite3.connect(project / ".loopml" / "store.db")
    with db:
        db.execute(
            "INSERT INTO artifacts (digest, materializer, type_name, size, meta, created_at) "
            "VALUES (?, 'folder.tar', 'pathlib.PosixPath', ?, ?, ?)",
            (digest, len(data), json.dumps({"name": "data"}), time.time()),
        )
    db.close()
    return digest


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_folder_artifact_never_writes_outside_the_output(
    cli_project: Path, tmp_path: Path, case: str
) -> None:
    out = cli_project / "out"
    build, member = HOSTILE[case]
    digest = _store_folder_artifact(cli_project, _tar_bytes(build(out)))
    (cli_project / "flag").write_text("original")  # what the attacks aim at: out/../flag
    before, around = _listing(cli_project), _listing(tmp_path)

    result = run_cli("artifacts", "get", digest[:12], "-o", "out/", cwd=cli_project, env=ENV)

    assert (cli_project / "flag").read_text() == "original", result
    assert _listing(tmp_path) == around, result  # nothing written or changed outside out/
    assert _listing(cli_project) == before, result  # and no out/ or .part debris either
    assert not out.exists() and not out.is_symlink()
    member = member.format(parent=cli_project)
    assert_error(result, "Nothing was extracted")
    assert member in result.stderr or repr(member) in result.stderr, result.stderr


def test_a_hostile_folder_artifact_leaves_an_existing_output_as_it_was(
    cli_project: Path,
) -> None:
    out = cli_project / "out"
    build, _ = HOSTILE["cve-2025-4517 realpath limit"]
    digest = _store_folder_artifact(cli_project, _tar_bytes(build(out)))
    (cli_project / "flag").write_text("original")
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    before = _listing(cli_project)
    result = run_cli(
        "artifacts", "get", digest[:12], "-o", "out", "--force", cwd=cli_project, env=ENV
    )
    assert_error(result, "Nothing was extracted")
    assert _listing(cli_project) == before
