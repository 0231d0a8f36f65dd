"""The index of steps done for another holds those steps only (a partial index): most steps
have no ``on_behalf_of``, and once ANALYZE had counted their NULLs SQLite read every step to
find what a person did for another (every /documents page asks it).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_SOME = sa.text("on_behalf_of IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_steps_on_behalf_of", table_name="steps")
    op.create_index(
        "ix_steps_on_behalf_of",
        "steps",
        ["on_behalf_of"],
        unique=False,
        sqlite_where=_SOME,
        postgresql_where=_SOME,
    )


def downgrade() -> None:
    op.drop_index("ix_steps_on_behalf_of", table_name="steps")
    op.create_index("ix_steps_on_behalf_of", "steps", ["on_behalf_of"], unique=False)
