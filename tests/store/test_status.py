"""One list of statuses (issue 12 §2): ``loopml.store.status``, enforced by the schema.

Before, statuses were string literals spread over many modules and the database took any
text, so a typo (``"succeded"``) was stored and then matched no filter. Now the schema's
CHECK constraints (migration 0003) refuse any status not in the enums, on both backends,
and no module spells a status outside ``status.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.errors import InvalidParameterError
from loopml.store import MetadataStore, RunStatus, StepStatus

SRC = Path(loopml.__file__).parent
STATUS_WORDS = {str(s) for s in (*RunStatus, *StepStatus)}

# Files allowed to spell statuses, and why.
ALLOWED = {
    # The one list.
    "store/status.py",
    # Migrations are frozen history: each states the CHECK constraints as they were when it
    # was written, so a later change to the enums can never change what an old upgrade did.
    "store/migrations/versions/r0003_core_hardening.py",
    "store/migrations/versions/r0008_schedules_tokens.py",
}


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    st = MetadataStore(store_url).open()
    yield st
    st.close()


def test_the_enums_hold_every_status_once() -> None:
    assert [str(s) for s in RunStatus] == ["running", "succeeded", "failed", "cancelled", "crashed"]
    assert set(StepStatus) >= set(RunStatus) - {RunStatus.RUNNING}
    assert RunStatus("failed") is RunStatus.FAILED
    assert "failed" in {RunStatus.FAILED}  # StrEnum: statuses compare and hash as plain text


def _new_run(store: MetadataStore) -> str:
    new, _ = store.runs.create(pipeline="p", host="h", pid=1, executor="local", lease_s=60)
    store.steps.insert_pending(new.id, [("s" * 32, "train", 1.0, 0.0)])
    return new.id


def _set(store: MetadataStore, table: str, column: str, status: str, run_id: str) -> None:
    store.db.write(
        lambda tx: tx.execute(f"UPDATE {table} SET status = ? WHERE {column} = ?", (status, run_id))
    )


def test_the_schema_refuses_an_unknown_run_or_step_status(store: MetadataStore) -> None:
    run_id = _new_run(store)
    for status in ("succeded", "done", "", "RUNNING", "pending"):
        with pytest.raises(InvalidParameterError, match="refused a value"):
            _set(store, "runs", "id", status, run_id)
    for status in ("succeded", "done", "", "Cached"):
        with pytest.raises(InvalidParameterError, match="refused a value"):
            _set(store, "step_runs", "run_id", status, run_id)
    assert store.runs.get(run_id).status == RunStatus.RUNNING
    assert [s.status for s in store.steps.for_run(run_id)] == [StepStatus.PENDING]


def test_the_schema_takes_every_status_of_each_table(store: MetadataStore) -> None:
    run_id = _new_run(store)
    for step_status in StepStatus:
        _set(store, "step_runs", "run_id", step_status, run_id)
        assert [s.status for s in store.steps.for_run(run_id)] == [step_status]
    for run_status in RunStatus:
        _set(store, "runs", "id", run_status, run_id)
        assert store.runs.get(run_id).status == run_status


def _status_literals(path: Path) -> list[str]:
    """``line: 'word'`` for each string constant that is exactly a status.

    Statuses inside SQL text (``... AND status = 'running'``) are guards written in the
    database's language and are not matched: only a bare ``"running"`` is.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and node.value in STATUS_WORDS:
            found.append(f"{node.lineno}: {node.value!r}")
    return found


def test_no_module_spells_a_status_outside_the_one_list() -> None:
    offenders = {
        rel: hits
        for path in sorted(SRC.rglob("*.py"))
        if (rel := path.relative_to(SRC).as_posix()) not in ALLOWED
        and (hits := _status_literals(path))
    }
    assert offenders == {}, (
        f"Use loopml.store.status.RunStatus / StepStatus instead of string literals: {offenders}"
    )


def test_the_allow_list_is_still_needed() -> None:
    for rel in ALLOWED:
        assert _status_literals(SRC / rel), f"{rel} no longer spells statuses: drop it"
