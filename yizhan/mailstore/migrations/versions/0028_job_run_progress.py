"""A slot job's progress: a long job (the digests, the password warnings …) does its slot in
small transactions, each moving ``cursor`` on past what it did; ``finished`` once all is done.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(sa.Column("cursor", sa.String(length=200), nullable=True))
        # Every run recorded so far was done in one transaction: finished.
        batch.add_column(
            sa.Column("finished", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("finished")
        batch.drop_column("cursor")
