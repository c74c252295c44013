"""Logged predictions and the ground truth attached to them later.

- ``predictions`` one row per logged prediction: its id, the model version and the variant
  that answered (the served reference, or ``shadow:REF`` for a shadow model, whose rows
  point at the answered prediction through ``shadow_of``), when, the input row and the
  output, both as JSON;
- ``prediction_feedback`` the label that arrived for a prediction id. It has no foreign key:
  feedback may arrive before its prediction is written (logging is batched) or for a
  prediction that was not sampled, and is kept either way.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("variant", sa.String(300), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("shadow_of", sa.String(64)),
    )
    op.create_index("ix_predictions_model_at", "predictions", ["model", "at"])
    op.create_table(
        "prediction_feedback",
        sa.Column("prediction_id", sa.String(64), primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("prediction_feedback")
    op.drop_index("ix_predictions_model_at", "predictions")
    op.drop_table("predictions")
