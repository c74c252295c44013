"""Schedules and their fires, API tokens, and idempotency keys for the REST API.

- ``schedules`` one row per schedule: the cron expression and its time zone, the pipeline and
  its parameters, timeout, retries and back-off, the catch-up and overlap policies, paused or not, where
  it was declared (``cli`` or ``config``), and ``decided_until``: every due time up to it has been
  decided (claimed or recorded as skipped). ``generation`` grows on every edit, so a
  scheduler holding an old copy never fires a changed or removed schedule.
- ``schedule_fires`` one row per ``(schedule, due_at)``: the unique constraint is what makes
  each fire run exactly once, whatever the number of schedulers. The owner and lease say
  which scheduler runs it and until when that claim holds.
- ``api_tokens`` the SHA-256 of each token (never the token), its role and its life.
- ``idempotency_keys`` the answer to a write request sent with an ``Idempotency-Key``: a
  retry of an acknowledged request gets the same answer and writes nothing twice.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FIRE_STATUSES = ("pending", "running", "succeeded", "failed", "skipped", "crashed")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("timeout_s", sa.Float),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("backoff_s", sa.Float, nullable=False),
        sa.Column("catchup", sa.String(8), nullable=False),
        sa.Column("overlap", sa.String(8), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("decided_until", sa.Float, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.CheckConstraint("catchup IN ('skip', 'once', 'all')", name="ck_schedules_catchup"),
        sa.CheckConstraint("source IN ('cli', 'config')", name="ck_schedules_source"),
        sa.CheckConstraint("overlap IN ('wait', 'skip', 'allow')", name="ck_schedules_overlap"),
    )
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("schedule", sa.String(200), nullable=False),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("owner", sa.String(64)),
        sa.Column("lease_until", sa.Float),
        sa.Column("not_before", sa.Float, nullable=False),
        sa.Column("claimed_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("requested_by", sa.Text),
        sa.UniqueConstraint("schedule", "due_at", name="uq_schedule_fires_due"),
        sa.CheckConstraint(_one_of("status", FIRE_STATUSES), name="ck_schedule_fires_status"),
        sa.CheckConstraint("kind IN ('cron', 'catchup', 'manual')", name="ck_schedule_fires_kind"),
    )
    op.create_index("ix_schedule_fires_status", "schedule_fires", ["status", "not_before"])
    op.create_index("ix_runs_status_started", "runs", ["status", "started_at"])
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
        sa.Column("last_used_at", sa.Float),
        sa.CheckConstraint("role IN ('reader', 'writer', 'admin')", name="ck_api_tokens_role"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("idem_key", sa.String(200), primary_key=True),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("api_tokens")
    op.drop_index("ix_schedule_fires_status", "schedule_fires")
    op.drop_index("ix_runs_status_started", "runs")
    op.drop_table("schedule_fires")
    op.drop_table("schedules")
