"""Where a step ran, in how many attempts, and in which environment.

``step_runs`` gains:

- ``host``: the machine (and, on a cluster, the node and worker process) that ran the step,
  written by the worker as the step starts, so a worker that dies still left its name;
- ``attempts``: how many times the step was started (``@step(retries=N)`` allows N + 1);
- ``env_digest``: the environment the step ran in (Python, packages, host), measured on
  the worker, in the deduplicated ``environments`` table. On a cluster this is what was
  really there, next to the run's own ``env_digest`` from the process that started it.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("step_runs") as batch:
        batch.add_column(sa.Column("host", sa.String(300)))
        batch.add_column(sa.Column("attempts", sa.Integer))
        batch.add_column(sa.Column("env_digest", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("step_runs") as batch:
        batch.drop_column("env_digest")
        batch.drop_column("attempts")
        batch.drop_column("host")
