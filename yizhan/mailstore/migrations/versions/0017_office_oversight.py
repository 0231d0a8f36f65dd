"""Planned delegations and the clerk's rung (issue 15).

``delegations.begun``: False for a delegation planned ahead until the scheduler begins it.
``account_records.reason``: why an account made without a change request was made.

The unit's clerk joins the escalation ladder before the unit head (issue 15): the levels kept
on ``steps.escalation`` above the person's move up one (1 head → 2, 2 office → 3), so that a
step already escalated is not news to the same people again.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 22:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delegations") as batch_op:
        batch_op.add_column(
            sa.Column("begun", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    with op.batch_alter_table("account_records") as batch_op:
        batch_op.add_column(sa.Column("reason", sa.Text(), server_default="", nullable=False))
    op.execute("UPDATE steps SET escalation = escalation + 1 WHERE escalation >= 1")


def downgrade() -> None:
    op.execute("UPDATE steps SET escalation = escalation - 1 WHERE escalation >= 2")
    with op.batch_alter_table("delegations") as batch_op:
        batch_op.drop_column("begun")
    with op.batch_alter_table("account_records") as batch_op:
        batch_op.drop_column("reason")
