"""Scheduler: reminder times on steps, personal settings (SET), and runs of periodic jobs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 17:46:19.332502
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yizhan.mailstore.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("slot", yizhan.mailstore.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ran_at", yizhan.mailstore.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job", "slot", name=op.f("pk_job_runs")),
    )
    op.create_table(
        "person_settings",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=30), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("updated_at", yizhan.mailstore.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account"], ["people.account"], name=op.f("fk_person_settings_account_people")
        ),
        sa.PrimaryKeyConstraint("account", "key", name=op.f("pk_person_settings")),
    )
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "next_reminder_at",
                yizhan.mailstore.models.UtcDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("reminders_sent", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("escalation", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_index(
            batch_op.f("ix_steps_next_reminder_at"), ["next_reminder_at"], unique=False
        )

    # Steps already waiting get their first look from the sweep, which plans their reminders.
    op.execute(
        "UPDATE steps SET next_reminder_at = created_at"
        " WHERE state = 'waiting' AND due_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_steps_next_reminder_at"))
        batch_op.drop_column("escalation")
        batch_op.drop_column("reminders_sent")
        batch_op.drop_column("next_reminder_at")

    op.drop_table("person_settings")
    op.drop_table("job_runs")
