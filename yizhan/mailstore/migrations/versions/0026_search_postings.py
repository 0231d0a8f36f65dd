"""The search index as one posting a gram and document, with its counts by field.

``search_grams`` held a row a gram, document and field, and a second index on the document:
at a million documents some 150 million rows, stored twice. ``search_postings`` holds a row a
gram and document (a WITHOUT ROWID table on SQLite, the counts in the key's index on
PostgreSQL), and the rows of a document are found through its indexed texts. The postings are
moved over in SQL, so no document is indexed again.

Going back empties the index texts too: the documents are then indexed again by
``yizhan search reindex`` (or, a batch at a time, by searches).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "search_postings",
        sa.Column("gram", sa.String(length=40), nullable=False),
        sa.Column("document_id", _ID, nullable=False),
        sa.Column("in_title", sa.Integer(), nullable=False),
        sa.Column("in_body", sa.Integer(), nullable=False),
        sa.Column("in_attachment", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "gram",
            "document_id",
            name=op.f("pk_search_postings"),
            postgresql_include=["in_title", "in_body", "in_attachment"],
        ),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO search_postings (gram, document_id, in_title, in_body, in_attachment) "
        "SELECT gram, document_id, "
        "SUM(CASE WHEN field = 'title' THEN count ELSE 0 END), "
        "SUM(CASE WHEN field = 'body' THEN count ELSE 0 END), "
        "SUM(CASE WHEN field NOT IN ('title', 'body') THEN count ELSE 0 END) "
        "FROM search_grams GROUP BY gram, document_id"
    )
    with op.batch_alter_table("search_grams", schema=None) as batch_op:
        batch_op.drop_index("ix_search_grams_document_id")
    op.drop_table("search_grams")


def downgrade() -> None:
    op.create_table(
        "search_grams",
        sa.Column("gram", sa.String(length=40), nullable=False),
        sa.Column("document_id", _ID, nullable=False),
        sa.Column("field", sa.String(length=20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("gram", "document_id", "field", name=op.f("pk_search_grams")),
    )
    with op.batch_alter_table("search_grams", schema=None) as batch_op:
        batch_op.create_index("ix_search_grams_document_id", ["document_id"], unique=False)
    op.drop_table("search_postings")
    op.execute("DELETE FROM search_texts")
