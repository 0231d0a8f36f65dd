"""Tests for yizhan.mailstore.accounts: the password policy and logins (第十六條, mine 一(四))."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from yizhan.daemon.context import Context
from yizhan.mailstore import accounts
from yizhan.mailstore.models import AuditEntry

T0 = dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.UTC)


def _login(ctx: Context, password: str, now: dt.datetime) -> accounts.LoginResult:
    with ctx.sessions.begin() as session:
        return accounts.authenticate(
            session, "wangfang", password, now=now, policy=ctx.login_policy
        )


def _set(ctx: Context, password: str, *, temporary: bool = False) -> None:
    with ctx.sessions.begin() as session:
        accounts.set_password(
            session,
            "wangfang",
            password,
            temporary=temporary,
            actor="mali",
            now=T0,
            policy=ctx.login_policy,
        )


def test_short_and_weak_passwords_are_refused(bureau: Context) -> None:
    # The regulation's floor is six characters; the bureau asks for eight.
    for weak, why in [
        ("abc123", "at least 8"),
        ("wangfang99", "account name"),
        ("aaaaaaaa", "three"),
    ]:
        with pytest.raises(accounts.AccountError, match=why):
            _set(bureau, weak)


def test_initial_password_must_be_changed_first(bureau: Context) -> None:
    # A temporary password is right, but the account may not send until it is changed.
    _set(bureau, "Temp-pass-1", temporary=True)
    result = _login(bureau, "Temp-pass-1", T0)
    assert not result.ok and "initial password must be changed" in result.reason
    _set(bureau, "Own-pass-22")
    assert _login(bureau, "Own-pass-22", T0).ok


def test_five_failures_lock_for_fifteen_minutes(bureau: Context) -> None:
    # After five wrong passwords in a row even the right one is refused until the lock ends.
    _set(bureau, "Right-pass-1")
    for _ in range(5):
        assert not _login(bureau, "wrong-pass", T0).ok
    locked = _login(bureau, "Right-pass-1", T0 + dt.timedelta(minutes=14))
    assert not locked.ok and "locked until" in locked.reason
    assert _login(bureau, "Right-pass-1", T0 + dt.timedelta(minutes=16)).ok
    with bureau.sessions() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert "account.locked" in actions


def test_suspended_and_revoked_accounts_cannot_log_in(bureau: Context) -> None:
    # 第十條: a person who leaves their post loses the account the same day.
    _set(bureau, "Right-pass-1")
    with bureau.sessions.begin() as session:
        accounts.set_state(session, "wangfang", "suspended", actor="mali", now=T0)
    assert "suspended" in _login(bureau, "Right-pass-1", T0).reason
    with bureau.sessions.begin() as session:
        accounts.set_state(session, "wangfang", "revoked", actor="mali", now=T0)
    assert "revoked" in _login(bureau, "Right-pass-1", T0).reason
    with pytest.raises(accounts.AccountError, match="revoked"):
        _set(bureau, "Another-pass-1")


def test_expired_password_must_be_changed(bureau: Context) -> None:
    # 第十六條: passwords are changed periodically (90 days by default).
    _set(bureau, "Right-pass-1")
    result = _login(bureau, "Right-pass-1", T0 + dt.timedelta(days=91))
    assert not result.ok and "older than 90 days" in result.reason


def test_remembered_logins_never_outlive_a_change(bureau: Context) -> None:
    # The gateway remembers verified passwords to spare argon2, but a new password, a
    # suspension or a wrong password are seen at the very next login.
    verified = accounts.VerifiedPasswords()

    def login(password: str) -> accounts.LoginResult:
        with bureau.sessions.begin() as session:
            return accounts.authenticate(
                session,
                "wangfang",
                password,
                now=T0,
                policy=bureau.login_policy,
                verified=verified,
            )

    _set(bureau, "Right-pass-1")
    assert login("Right-pass-1").ok
    assert login("Right-pass-1").ok
    assert not login("Wrong-pass-1").ok
    _set(bureau, "Other-pass-22")
    assert not login("Right-pass-1").ok
    assert login("Other-pass-22").ok
    with bureau.sessions.begin() as session:
        accounts.set_state(session, "wangfang", "suspended", actor="mali", now=T0)
    assert "suspended" in login("Other-pass-22").reason
