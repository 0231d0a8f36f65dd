"""Delegations while away (外出授權, 第九條) and the unit of per-unit steps.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 17:35:08.369597
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yizhan.mailstore.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delegations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("delegator", sa.String(length=64), nullable=False),
        sa.Column("delegate", sa.String(length=64), nullable=False),
        sa.Column("starts_at", yizhan.mailstore.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("until", yizhan.mailstore.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", yizhan.mailstore.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["delegate"], ["people.account"], name=op.f("fk_delegations_delegate_people")
        ),
        sa.ForeignKeyConstraint(
            ["delegator"], ["people.account"], name=op.f("fk_delegations_delegator_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delegations")),
    )
    with op.batch_alter_table("delegations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delegations_delegator"), ["delegator"], unique=False)

    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.drop_column("unit")

    with op.batch_alter_table("delegations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delegations_delegator"))

    op.drop_table("delegations")
