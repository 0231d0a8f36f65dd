"""Tests for the schema: migrations match the models, and the audit trail is append-only."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, update
from sqlalchemy.exc import DatabaseError

from yizhan.daemon.context import Context
from yizhan.mailstore import audit
from yizhan.mailstore.models import AuditEntry, Base


def test_migrations_create_exactly_the_models(ctx: Context) -> None:
    # A model changed without a migration would work in tests and break production upgrades.
    with ctx.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def test_audit_entries_cannot_be_changed_or_deleted(ctx: Context) -> None:
    # Mine rules 一(五): every action stays attributable; the database refuses edits.
    now = dt.datetime.now(dt.UTC)
    with ctx.sessions.begin() as session:
        audit.record(session, at=now, actor="mali", action="test", target="x")
    with pytest.raises(DatabaseError, match="append-only"), ctx.sessions.begin() as session:
        session.execute(update(AuditEntry).values(actor="someone-else"))
    with pytest.raises(DatabaseError, match="append-only"), ctx.sessions.begin() as session:
        session.execute(delete(AuditEntry))
