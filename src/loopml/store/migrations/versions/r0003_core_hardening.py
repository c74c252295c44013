"""Statuses as CHECK constraints, deduplicated environments, run owners, gc and cache-reason tables.

- ``runs.status`` and ``step_runs.status`` may only hold the values of ``store/status.py``;
- ``runs.environment`` (a JSON copy per run) becomes ``runs.env_digest`` into the new
  ``environments`` table, one row per distinct environment;
- ``runs.owner`` names the owning process (machine, pid, start time) for liveness checks;
- ``step_runs.reason`` records why a step ran or which run it was reused from;
- ``artifacts.touched_at``, ``cache_outputs`` and ``step_basis`` serve gc and cache reasons.

On SQLite, changing constraints recreates the table (Alembic batch mode). The migration runs
on a connection without ``PRAGMA foreign_keys`` (see ``engine.py``), so dropping the old
``runs`` table does not cascade into its children.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RUN_STATUSES = ("running", "succeeded", "failed", "cancelled", "crashed")
STEP_STATUSES = ("pending", "running", "succeeded", "failed", "skipped", "cancelled", "crashed")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    conn = op.get_bind()
    op.create_table(
        "environments",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("env_digest", sa.String(64)))
        batch.add_column(sa.Column("owner", sa.String(200)))
    # Move each run's environment JSON into one row per distinct environment.
    seen: set[str] = set()
    rows = conn.execute(sa.text("SELECT id, environment FROM runs WHERE environment IS NOT NULL"))
    for run_id, text in list(rows):
        data = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(data.encode("utf-8")).hexdigest()
        if digest not in seen:
            seen.add(digest)
            conn.execute(
                sa.text("INSERT INTO environments (digest, data) VALUES (:d, :data)"),
                {"d": digest, "data": data},
            )
        conn.execute(
            sa.text("UPDATE runs SET env_digest = :d WHERE id = :id"), {"d": digest, "id": run_id}
        )
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("environment")
        batch.create_check_constraint("ck_runs_status", _one_of("status", RUN_STATUSES))
    with op.batch_alter_table("step_runs") as batch:
        batch.add_column(sa.Column("reason", sa.Text))
        batch.create_check_constraint("ck_step_runs_status", _one_of("status", STEP_STATUSES))
    op.create_index("ix_step_runs_name_started", "step_runs", ["name", "started_at"])
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("touched_at", sa.Float))
    conn.execute(sa.text("UPDATE artifacts SET touched_at = created_at"))
    op.create_index("ix_step_cache_step_run_id", "step_cache", ["step_run_id"])
    op.create_table(
        "cache_outputs",
        sa.Column(
            "key",
            sa.String(64),
            sa.ForeignKey("step_cache.key", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("digest", sa.String(64), sa.ForeignKey("artifacts.digest"), primary_key=True),
    )
    op.create_index("ix_cache_outputs_digest", "cache_outputs", ["digest"])
    # Existing cache entries keep their outputs alive: fill cache_outputs from their JSON.
    known = {d for (d,) in conn.execute(sa.text("SELECT digest FROM artifacts"))}
    for key, outputs in list(conn.execute(sa.text("SELECT key, outputs FROM step_cache"))):
        for digest in set(json.loads(outputs).get("outputs", {}).values()):
            if digest in known:
                conn.execute(
                    sa.text("INSERT INTO cache_outputs (key, digest) VALUES (:k, :d)"),
                    {"k": key, "d": digest},
                )
    op.create_table(
        "step_basis",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("basis", sa.Text, nullable=False),
    )
