"""Evaluation suites and the evaluations of models on them.

- ``suites`` holds the names; ``suite_versions`` one frozen definition per (name, number):
  the dataset version, target, task, split and options, plus the row indices the split
  produced (an artifact) and their hash;
- ``evaluations`` one row per (suite version, model, evaluation settings): the metrics with
  their confidence intervals, and the predictions and full result as artifacts.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suites",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "suite_versions",
        sa.Column(
            "name",
            sa.String(200),
            sa.ForeignKey("suites.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("dataset_name", sa.String(200), nullable=False),
        sa.Column("dataset_number", sa.Integer, nullable=False),
        sa.Column(
            "dataset_digest", sa.String(64), sa.ForeignKey("artifacts.digest"), nullable=False
        ),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("split", sa.Text, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column(
            "indices_digest", sa.String(64), sa.ForeignKey("artifacts.digest"), nullable=False
        ),
        sa.Column("indices_hash", sa.String(64), nullable=False),
        sa.Column("definition_hash", sa.String(64), nullable=False),
        sa.Column("test_rows", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("name", "definition_hash", name="uq_suite_versions_name_definition"),
        sa.CheckConstraint(
            "task IN ('binary', 'multiclass', 'regression', 'forecasting')",
            name="ck_suite_versions_task",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_name", "dataset_number"],
            ["dataset_versions.name", "dataset_versions.number"],
        ),
    )
    op.create_index(
        "ix_suite_versions_dataset", "suite_versions", ["dataset_name", "dataset_number"]
    )
    op.create_index("ix_suite_versions_indices_digest", "suite_versions", ["indices_digest"])

    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("suite_name", sa.String(200), nullable=False),
        sa.Column("suite_number", sa.Integer, nullable=False),
        sa.Column("model_digest", sa.String(64), sa.ForeignKey("artifacts.digest"), nullable=False),
        sa.Column("model_label", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column(
            "predictions_digest", sa.String(64), sa.ForeignKey("artifacts.digest"), nullable=False
        ),
        sa.Column(
            "result_digest", sa.String(64), sa.ForeignKey("artifacts.digest"), nullable=False
        ),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint(
            "suite_name",
            "suite_number",
            "model_digest",
            "config_hash",
            name="uq_evaluations_suite_model_config",
        ),
        sa.ForeignKeyConstraint(
            ["suite_name", "suite_number"],
            ["suite_versions.name", "suite_versions.number"],
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_evaluations_suite", "evaluations", ["suite_name", "suite_number"])
    op.create_index("ix_evaluations_model_digest", "evaluations", ["model_digest"])
    op.create_index("ix_evaluations_run_id", "evaluations", ["run_id"])
    op.create_index("ix_evaluations_predictions_digest", "evaluations", ["predictions_digest"])
    op.create_index("ix_evaluations_result_digest", "evaluations", ["result_digest"])


def downgrade() -> None:
    for index in (
        "ix_evaluations_result_digest",
        "ix_evaluations_predictions_digest",
        "ix_evaluations_run_id",
        "ix_evaluations_model_digest",
        "ix_evaluations_suite",
    ):
        op.drop_index(index, table_name="evaluations")
    op.drop_table("evaluations")
    op.drop_index("ix_suite_versions_indices_digest", table_name="suite_versions")
    op.drop_index("ix_suite_versions_dataset", table_name="suite_versions")
    op.drop_table("suite_versions")
    op.drop_table("suites")
