"""Audit hash chain: chain columns on ``audit``, the one-row ``audit_head``, relaxed triggers.

Rows that exist before this migration are the legacy rows (ids up to ``legacy_until``); they
are chained once, in id order, by the first commit that seals audit rows, by ``yizhan audit
verify`` or by any ``yizhan`` verb (see ``mailstore/auditchain.py``). The append-only triggers
now let exactly one update through: setting the three empty chain columns of a row, nothing
else; PostgreSQL also refuses TRUNCATE.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
REFUSAL = "the audit trail is append-only"

# The one update allowed: empty chain columns filled, every other column as it was.
SQLITE_SEALING = (
    "OLD.seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL "
    "AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL "
    "AND NEW.id IS OLD.id AND NEW.at IS OLD.at AND NEW.actor IS OLD.actor "
    "AND NEW.action IS OLD.action AND NEW.target IS OLD.target "
    "AND NEW.on_behalf_of IS OLD.on_behalf_of AND NEW.detail IS OLD.detail"
)
POSTGRESQL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION yizhan_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL
           AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
           AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.actor = OLD.actor
           AND NEW.action = OLD.action
           AND NEW.target IS NOT DISTINCT FROM OLD.target
           AND NEW.on_behalf_of IS NOT DISTINCT FROM OLD.on_behalf_of
           AND NEW.detail::text = OLD.detail::text THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '{REFUSAL}';
END $$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.add_column("audit", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column("audit", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("audit", sa.Column("hash", sa.String(length=64), nullable=True))
    op.create_index("ix_audit_seq", "audit", ["seq"], unique=True)
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("seal", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("legacy_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    legacy_until = op.get_bind().execute(sa.text("SELECT MAX(id) FROM audit")).scalar()
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS, "legacy_until": legacy_until}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION yizhan_audit_append_only()"
        )
    else:
        op.execute("DROP TRIGGER audit_no_update")
        op.execute(
            f"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit WHEN NOT ({SQLITE_SEALING}) "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_no_truncate ON audit")
        op.execute(
            "CREATE OR REPLACE FUNCTION yizhan_audit_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$ LANGUAGE plpgsql"
        )
    else:
        op.execute("DROP TRIGGER audit_no_update")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_seq", table_name="audit")
    # The chain columns go; PostgreSQL's trigger must let this one schema change through
    # (it fires on rows, not on DDL), and SQLite's UPDATE trigger is recreated afterwards.
    op.drop_column("audit", "hash")
    op.drop_column("audit", "prev_hash")
    op.drop_column("audit", "seq")
    if op.get_bind().dialect.name != "postgresql":
        op.execute(
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )
