"""IMAP: what was filed into which person's folder, and what fetch mode has read.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "imap_filings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", _ID, nullable=False),
        sa.Column("message_pk", _ID, nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("folder", sa.String(length=200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("step_id", _ID, nullable=True),
        sa.Column("document_id", _ID, nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imap_filings")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_imap_filings_delivery_id")),
    )
    with op.batch_alter_table("imap_filings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_imap_filings_account"), ["account"], unique=False)
        batch_op.create_index(batch_op.f("ix_imap_filings_step_id"), ["step_id"], unique=False)
        batch_op.create_index("ix_imap_filings_folder_state", ["folder", "state"], unique=False)
    op.create_table(
        "fetched_messages",
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("inbound_floor", sa.BigInteger(), nullable=False),
        sa.Column("inbound_id", _ID, nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "uidvalidity", "uid", name=op.f("pk_fetched_messages")),
    )
    with op.batch_alter_table("fetched_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fetched_messages_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fetched_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fetched_messages_sha256"))
    op.drop_table("fetched_messages")
    with op.batch_alter_table("imap_filings", schema=None) as batch_op:
        batch_op.drop_index("ix_imap_filings_folder_state")
        batch_op.drop_index(batch_op.f("ix_imap_filings_step_id"))
        batch_op.drop_index(batch_op.f("ix_imap_filings_account"))
    op.drop_table("imap_filings")
