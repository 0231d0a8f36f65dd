"""Legal holds on documents (kept by the retention job) and the re-scans of stored attachments.

Revision ID: 0021
Revises: 0016
Create Date: 2026-12-06 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "legal_holds",
        sa.Column("document_id", _ID, nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_legal_holds_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_legal_holds")),
    )
    op.create_table(
        "signature_scans",
        sa.Column("signatures", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scanned", sa.Integer(), nullable=False),
        sa.Column("infected", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("signatures", name=op.f("pk_signature_scans")),
    )


def downgrade() -> None:
    op.drop_table("signature_scans")
    op.drop_table("legal_holds")
