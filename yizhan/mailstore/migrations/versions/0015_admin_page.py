"""Admin page (issue 14): its sessions, the saved versions of the rules file, and the indexes
its pages need with a hundred thousand documents.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yizhan.mailstore.models import UtcDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_INDEXES = (
    ("documents", "ix_documents_unit_id_id", ["unit_id", "id"]),
    ("documents", "ix_documents_author_id", ["author", "id"]),
    ("documents", "ix_documents_created_at", ["created_at"]),
    ("steps", "ix_steps_done_by", ["done_by"]),
    ("steps", "ix_steps_on_behalf_of", ["on_behalf_of"]),
    ("steps", "ix_steps_unit_state", ["unit", "state"]),
    ("audit", "ix_audit_target_id", ["target", "id"]),
    ("audit", "ix_audit_actor_at", ["actor", "at"]),
)


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("must_change", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("peer", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["account"], ["people.account"], name=op.f("fk_web_sessions_account_people")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_account"), ["account"], unique=False)
    op.create_table(
        "rules_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("saved_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("saved_by", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules_versions")),
    )
    for table, name, columns in _INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for table, name, _columns in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("rules_versions")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_account"))
    op.drop_table("web_sessions")
