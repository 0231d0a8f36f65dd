"""Two indexes of steps for the admin page with 100,000 documents (docs/perf.md):

* ``ix_steps_on_behalf_of`` holds only the steps done for another (a partial index): most
  steps have no ``on_behalf_of``, and once ANALYZE had counted their NULLs SQLite read every
  step to find what a person did for another (asked on every /documents page).
* ``ix_steps_state_assignee`` covers what the front page counts of the waiting steps (who
  has each, for which unit, due when): read from the index alone, not from every step's row.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
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
    op.create_index(
        "ix_steps_state_assignee",
        "steps",
        ["state", "assignee", "unit", "due_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_steps_state_assignee", table_name="steps")
    op.drop_index("ix_steps_on_behalf_of", table_name="steps")
    op.create_index("ix_steps_on_behalf_of", "steps", ["on_behalf_of"], unique=False)
