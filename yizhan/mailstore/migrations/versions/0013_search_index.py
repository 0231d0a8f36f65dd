"""Search index: the folded texts of documents and the postings of their grams.

Documents that exist before this migration are indexed by ``yizhan search reindex`` (and, a
batch at a time, by the first searches).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_grams",
        sa.Column("gram", sa.String(length=40), nullable=False),
        sa.Column(
            "document_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("field", sa.String(length=20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("gram", "document_id", "field", name=op.f("pk_search_grams")),
    )
    with op.batch_alter_table("search_grams", schema=None) as batch_op:
        batch_op.create_index("ix_search_grams_document_id", ["document_id"], unique=False)
    op.create_table(
        "search_texts",
        sa.Column(
            "document_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("field", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_search_texts_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("document_id", "field", name=op.f("pk_search_texts")),
    )


def downgrade() -> None:
    op.drop_table("search_texts")
    with op.batch_alter_table("search_grams", schema=None) as batch_op:
        batch_op.drop_index("ix_search_grams_document_id")
    op.drop_table("search_grams")
