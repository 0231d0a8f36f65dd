"""An inbound row's raw file is its key: the pickup makes a row from a spooled envelope only
if the file has none yet (a spool file found again after a crash makes no second row).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_inbound_path", "inbound", ["path"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_inbound_path", table_name="inbound")
