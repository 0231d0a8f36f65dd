"""Module tables: HR's leave book and service starts, and IT's account file.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:23:10.543791
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yizhan.mailstore.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_records",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("nda_signed", sa.Boolean(), nullable=False),
        sa.Column("special", sa.Boolean(), nullable=False),
        sa.Column("responsible", sa.String(length=64), nullable=True),
        sa.Column(
            "document_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", yizhan.mailstore.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account"], ["people.account"], name=op.f("fk_account_records_account_people")
        ),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_account_records")),
    )
    op.create_table(
        "leave_profiles",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("service_start", sa.Date(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", yizhan.mailstore.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account"], ["people.account"], name=op.f("fk_leave_profiles_account_people")
        ),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_leave_profiles")),
    )
    op.create_table(
        "leave_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("leave_type", sa.String(length=20), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column(
            "document_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column(
            "recorded_at", yizhan.mailstore.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["account"], ["people.account"], name=op.f("fk_leave_records_account_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leave_records")),
    )
    with op.batch_alter_table("leave_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leave_records_account"), ["account"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("leave_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leave_records_account"))

    op.drop_table("leave_records")
    op.drop_table("leave_profiles")
    op.drop_table("account_records")
