"""Datasets: named, numbered versions of files and folders held as artifacts.

- ``datasets`` holds the names; ``dataset_versions`` one row per (name, number), pointing
  at the data blob and, for tables, at the stored profile (both rows of ``artifacts``, so
  ``gc`` keeps them while the version exists);
- ``dataset_validations`` records each check of a version against a schema (the schema
  and the report are artifacts too).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column(
            "name",
            sa.String(200),
            sa.ForeignKey("datasets.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(64), sa.ForeignKey("artifacts.digest"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger),
        sa.Column("columns", sa.Integer),
        sa.Column("profile_digest", sa.String(64), sa.ForeignKey("artifacts.digest")),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("name", "digest", name="uq_dataset_versions_name_digest"),
        sa.CheckConstraint("kind IN ('file', 'folder')", name="ck_dataset_versions_kind"),
    )
    op.create_index("ix_dataset_versions_digest", "dataset_versions", ["digest"])
    op.create_index("ix_dataset_versions_profile_digest", "dataset_versions", ["profile_digest"])

    op.create_table(
        "dataset_validations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column(
            "schema_digest", sa.String(64), sa.ForeignKey("artifacts.digest"), nullable=False
        ),
        sa.Column(
            "report_digest", sa.String(64), sa.ForeignKey("artifacts.digest"), nullable=False
        ),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("warnings", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "number"],
            ["dataset_versions.name", "dataset_versions.number"],
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_dataset_validations_version", "dataset_validations", ["name", "number"])
    op.create_index(
        "ix_dataset_validations_schema_digest", "dataset_validations", ["schema_digest"]
    )
    op.create_index(
        "ix_dataset_validations_report_digest", "dataset_validations", ["report_digest"]
    )


def downgrade() -> None:
    op.drop_table("dataset_validations")
    op.drop_index("ix_dataset_versions_profile_digest", table_name="dataset_versions")
    op.drop_index("ix_dataset_versions_digest", table_name="dataset_versions")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
