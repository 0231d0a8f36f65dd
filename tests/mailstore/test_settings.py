"""Tests for yizhan.mailstore.settings: keeping what people choose with SET at cmd@."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from yizhan.daemon.context import Context
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import AuditEntry, PersonSetting
from yizhan.mailstore.settings import load_settings, save_settings, settings_of
from yizhan.routing.settings import DIGEST, LANGUAGE

NOW = dt.datetime(2026, 9, 22, 2, 0, tzinfo=dt.UTC)


def test_settings_round_trip_and_are_audited(bureau: Context) -> None:
    # SET digest 09:00 and SET language en are kept, read back, and each is in the audit log.
    with bureau.sessions.begin() as session:
        save_settings(
            session, "wangfang", {DIGEST: "09:00", LANGUAGE: "en"}, actor="wangfang", now=NOW
        )
    with bureau.sessions() as session:
        assert load_settings(session, "wangfang") == {DIGEST: "09:00", LANGUAGE: "en"}
        assert settings_of(session, DIGEST, ["wangfang", "lijun"]) == {"wangfang": "09:00"}
        # The language is the person's own, which every mail is rendered in.
        assert load_directory(session).people["wangfang"].language == "en"
        actions = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "settings.set")
        ).all()
        assert {d["key"] for d in actions} == {DIGEST, LANGUAGE}


def test_back_to_default_removes_the_row(bureau: Context) -> None:
    # SET digest on (None) leaves no row behind; changing a value updates the one row.
    with bureau.sessions.begin() as session:
        save_settings(session, "lijun", {DIGEST: "off"}, actor="lijun", now=NOW)
        save_settings(session, "lijun", {DIGEST: "08:30"}, actor="lijun", now=NOW)
    with bureau.sessions() as session:
        assert session.scalars(select(PersonSetting.value)).all() == ["08:30"]
    with bureau.sessions.begin() as session:
        save_settings(session, "lijun", {DIGEST: None, LANGUAGE: None}, actor="lijun", now=NOW)
    with bureau.sessions() as session:
        assert load_settings(session, "lijun") == {}
        assert session.scalars(select(PersonSetting)).all() == []
