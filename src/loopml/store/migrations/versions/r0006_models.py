"""The model registry: models, their numbered versions, the dataset versions each was trained
on, aliases, and the audit history of every alias move.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column(
            "name",
            sa.String(200),
            sa.ForeignKey("models.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(64), sa.ForeignKey("artifacts.digest"), nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("library", sa.String(64), nullable=False),
        sa.Column("library_version", sa.String(64), nullable=False),
        sa.Column("input_schema", sa.Text),
        sa.Column("output_schema", sa.Text),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("name", "digest", name="uq_model_versions_name_digest"),
    )
    op.create_index("ix_model_versions_digest", "model_versions", ["digest"])
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "model_datasets",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("dataset_name", sa.String(200), primary_key=True),
        sa.Column("dataset_number", sa.Integer, primary_key=True),
        sa.ForeignKeyConstraint(
            ["name", "number"],
            ["model_versions.name", "model_versions.number"],
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_name", "dataset_number"],
            ["dataset_versions.name", "dataset_versions.number"],
        ),
    )
    op.create_index(
        "ix_model_datasets_dataset", "model_datasets", ["dataset_name", "dataset_number"]
    )
    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("moved_at", sa.Float, nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "number"], ["model_versions.name", "model_versions.number"]
        ),
    )
    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("from_number", sa.Integer),
        sa.Column("to_number", sa.Integer),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("by", sa.Text, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("gates", sa.Text, nullable=False),
    )
    op.create_index("ix_alias_events_alias", "alias_events", ["name", "alias"])


def downgrade() -> None:
    op.drop_index("ix_alias_events_alias", table_name="alias_events")
    op.drop_table("alias_events")
    op.drop_table("model_aliases")
    op.drop_index("ix_model_datasets_dataset", table_name="model_datasets")
    op.drop_table("model_datasets")
    op.drop_index("ix_model_versions_run_id", table_name="model_versions")
    op.drop_index("ix_model_versions_digest", table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_table("models")
