"""The directory read back from the database: every change is seen at once, by every reader.

load_directory keeps what it read until ``directory_version`` moves; these tests check that
no change can hide behind what was kept.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from yizhan.daemon.context import Context
from yizhan.mailstore import accounts
from yizhan.mailstore.db import make_engine
from yizhan.mailstore.directory import load_directory, save_person
from yizhan.mailstore.models import Person, Role


def test_a_committed_change_is_seen_by_the_next_read(bureau: Context) -> None:
    with bureau.sessions() as session:
        before = load_directory(session)
    assert before.people["wangfang"].state == "active"
    with bureau.sessions.begin() as session:
        accounts.set_state(session, "wangfang", "suspended", actor="test", now=bureau.clock())
    with bureau.sessions.begin() as session:
        person = dataclasses.replace(load_directory(session).people["lintao"], name="林濤（調任）")
        save_person(session, person, now=bureau.clock())
    with bureau.sessions() as session:
        after = load_directory(session)
    assert after.people["wangfang"].state == "suspended"
    assert after.people["lintao"].name == "林濤（調任）"


def test_a_change_made_through_another_connection_is_seen(bureau: Context) -> None:
    # Another process (the CLI, the second daemon) writes through an engine of its own.
    with bureau.sessions() as session:
        load_directory(session)
    other = make_engine(bureau.config.database_url)
    try:
        with sessionmaker(other).begin() as session:
            row = session.get(Role, ("wangfang", "clerk"))
            assert row is not None
            session.delete(row)
    finally:
        other.dispose()
    with bureau.sessions() as session:
        assert "clerk" not in load_directory(session).people["wangfang"].roles


def test_a_transaction_reads_its_own_change_and_a_rollback_leaves_nothing(
    bureau: Context,
) -> None:
    with bureau.sessions() as session:
        row = session.get(Person, "wangfang")
        assert row is not None
        row.name = "王芳芳"
        # Unflushed: the read flushes it first, and sees it.
        assert load_directory(session).people["wangfang"].name == "王芳芳"
        session.rollback()
    with bureau.sessions() as session:
        assert load_directory(session).people["wangfang"].name == "王芳"


def test_a_login_does_not_make_everyone_read_the_directory_again(bureau: Context) -> None:
    # Only what the directory holds raises its version: a last-login time is not in it.
    with bureau.sessions() as session:
        first = load_directory(session)
    with bureau.sessions.begin() as session:
        accounts.get_account(session, "wangfang").last_login_at = bureau.clock()
    with bureau.sessions() as session:
        assert load_directory(session) is first


def test_a_change_made_by_a_statement_is_seen(bureau: Context) -> None:
    # Not object by object: one UPDATE statement through a session (as a script might).
    with bureau.sessions() as session:
        load_directory(session)
    with bureau.sessions.begin() as session:
        session.execute(
            update(Person).where(Person.account == "lintao").values(email="lintao@retired.example")
        )
    with bureau.sessions() as session:
        assert load_directory(session).people["lintao"].email == "lintao@retired.example"
