"""Tests for yizhan.mailstore.backup: a backup restores into a new instance whole (第四條(二)3)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import fresh_database, make_config
from yizhan.daemon.context import Context
from yizhan.mailstore import audit, outbox
from yizhan.mailstore.backup import BackupError, backup, restore
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.models import AuditEntry, OutboundMessage, Person


def test_backup_restores_into_a_new_instance(bureau: Context, tmp_path: Path) -> None:
    # IT backs up a running bureau and restores it elsewhere: people, audit trail, queued
    # mail (bytes intact) and raw files all come back, and new rows get fresh ids.
    now = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
    stored = bureau.raw.write("inbound", b"Subject: x\r\n\r\nbody\r\n", now)
    with bureau.sessions.begin() as session:
        audit.record(session, at=now, actor="mali", action="test.before-backup")
        outbox.enqueue(
            session,
            source="t:1",
            message=b"Subject: \xe6\xb8\xac\r\n\r\n\xff\x00\r\n",
            mail_from="cmd@oa.example",
            rcpts=["lijun@bureau.example"],
            now=now,
            expires_after=dt.timedelta(days=5),
            domain="oa.example",
        )
    target = tmp_path / "backup"
    counts = backup(bureau.engine, bureau.config.data_dir, bureau.config.signing.gnupg_home, target)
    assert counts["people"] >= 30 and counts["audit"] >= 2
    with pytest.raises(BackupError, match="not empty"):
        backup(bureau.engine, bureau.config.data_dir, bureau.config.signing.gnupg_home, target)

    other = tmp_path / "other"
    with fresh_database(other, "restored") as url:
        ctx = Context.open(make_config(other, url))
        try:
            upgrade(ctx.engine)
            key = ctx.audit_key
            assert key is not None
            restore(
                ctx.engine,
                ctx.config.data_dir,
                ctx.config.signing.gnupg_home,
                target,
                audit_key=key,
            )
            with ctx.sessions.begin() as session:
                assert session.get(Person, "wangfang") is not None
                actions = session.scalars(select(AuditEntry.action)).all()
                assert "test.before-backup" in actions
                data = session.scalars(select(OutboundMessage.data)).one()
                assert data.endswith(b"\xff\x00\r\n")
                before = session.scalar(select(func.max(AuditEntry.id)))
                entry = audit.record(session, at=now, actor="mali", action="after")
                session.flush()
                assert before is not None and entry.id > before
            assert ctx.raw.read(stored.relative) == b"Subject: x\r\n\r\nbody\r\n"
            with pytest.raises(BackupError, match="not empty"):
                restore(
                    ctx.engine,
                    ctx.config.data_dir,
                    ctx.config.signing.gnupg_home,
                    target,
                    audit_key=key,
                )
        finally:
            ctx.close()


def test_restore_refuses_an_incomplete_backup(ctx: Context, tmp_path: Path) -> None:
    # A backup cut off before its manifest was written is not taken for a whole one.
    (tmp_path / "half").mkdir()
    with pytest.raises(BackupError, match="manifest"):
        restore(
            ctx.engine,
            ctx.config.data_dir,
            ctx.config.signing.gnupg_home,
            tmp_path / "half",
            audit_key=b"k" * 32,
        )
