"""Monitors over logged predictions: their definitions, evaluated windows and alerts.

- ``monitors`` one row per monitor: the served model reference it watches, the reference
  data, the window length and step, the rules (the TOML text as given), the actions, and
  ``origin``: the start of the first window it evaluates.
- ``monitor_windows`` one row per ``(monitor, start_at)``: the statistics of that window as
  JSON, its row count and the number of labels it had when evaluated (a window is
  evaluated again when late labels arrive).
- ``monitor_alerts`` one row per ``(monitor, rule, window_start)``: the unique constraint is
  what makes each rule fire once per window, however many schedulers evaluate it. The
  process that inserted the row owns its actions (webhook, retrain, promotion) under a
  lease; ``acted_at`` says they are done.

``predictions`` gains ``latency_ms``: how long the request that made the prediction took in
``loopml serve`` (null for batch scoring and rows logged before), so a window reports the
latency its traffic saw.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("latency_ms", sa.Float))
    op.create_table(
        "monitors",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("reference", sa.String(300), nullable=False),
        sa.Column("window_s", sa.Float, nullable=False),
        sa.Column("every_s", sa.Float, nullable=False),
        sa.Column("origin", sa.Float, nullable=False),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("rules_path", sa.Text, nullable=False),
        sa.Column("actions", sa.Text, nullable=False),
        sa.Column("target", sa.String(300)),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
    )
    op.create_table(
        "monitor_windows",
        sa.Column(
            "monitor",
            sa.String(200),
            sa.ForeignKey("monitors.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("start_at", sa.Float, primary_key=True),
        sa.Column("end_at", sa.Float, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("label_count", sa.Integer, nullable=False),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("evaluated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "monitor",
            sa.String(200),
            sa.ForeignKey("monitors.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("window_end", sa.Float, nullable=False),
        sa.Column("fired_at", sa.Float, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("owner", sa.String(64)),
        sa.Column("lease_until", sa.Float),
        sa.Column("notified_at", sa.Float),
        sa.Column("notify_error", sa.Text),
        sa.Column("run_id", sa.String(32)),
        sa.Column("promotion", sa.Text),
        sa.Column("acted_at", sa.Float),
        sa.UniqueConstraint("monitor", "rule", "window_start", name="uq_monitor_alerts_once"),
    )
    op.create_index("ix_monitor_alerts_acted", "monitor_alerts", ["acted_at"])


def downgrade() -> None:
    op.drop_index("ix_monitor_alerts_acted", "monitor_alerts")
    op.drop_table("monitor_alerts")
    op.drop_table("monitor_windows")
    op.drop_table("monitors")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("latency_ms")
