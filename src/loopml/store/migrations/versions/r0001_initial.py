"""Initial schema: runs, params, tags, metrics, step runs, artifacts and lineage links.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("duration_s", sa.Float),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("lease_s", sa.Float, nullable=False),
        sa.Column("lease_token", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("executor", sa.String(64), nullable=False),
        sa.Column("git_commit", sa.String(40)),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("git_diff_digest", sa.String(64)),
        sa.Column("python_version", sa.String(32)),
        sa.Column("environment", sa.Text),
        sa.Column("cpu_s", sa.Float),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("pipeline", "number", name="uq_runs_pipeline_number"),
    )
    op.create_index("ix_runs_status_heartbeat", "runs", ["status", "heartbeat_at"])
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "params",
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("num", sa.Float),
    )
    op.create_index("ix_params_key_num", "params", ["key", "num"])
    op.create_table(
        "tags",
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "metrics",
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("step", sa.BigInteger, primary_key=True),
        sa.Column("value", sa.Float),
        sa.Column("timestamp", sa.Float, nullable=False),
    )
    op.create_table(
        "latest_metrics",
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.create_table(
        "step_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("cache_key", sa.String(64)),
        sa.Column("started_at", sa.Float),
        sa.Column("ended_at", sa.Float),
        sa.Column("wall_s", sa.Float),
        sa.Column("cpu_s", sa.Float),
        sa.Column("peak_mem_bytes", sa.BigInteger),
        sa.Column("cpus", sa.Float),
        sa.Column("gpus", sa.Float),
        sa.Column("stdout", sa.Text),
        sa.Column("stderr", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("traceback", sa.Text),
    )
    op.create_index("ix_step_runs_run_id", "step_runs", ["run_id"])
    op.create_table(
        "artifacts",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("materializer", sa.String(64), nullable=False),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "artifact_links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("step_run_id", sa.String(32), sa.ForeignKey("step_runs.id", ondelete="CASCADE")),
        sa.Column("digest", sa.String(64), sa.ForeignKey("artifacts.digest"), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
    )
    op.create_index("ix_artifact_links_digest", "artifact_links", ["digest"])
    op.create_index("ix_artifact_links_run_id", "artifact_links", ["run_id"])
