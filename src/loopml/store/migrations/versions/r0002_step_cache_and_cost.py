"""Step cache table and the run's computed cost.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cost", sa.Float))
    op.create_table(
        "step_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("step", sa.String(200), nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("step_run_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
