"""Keeps the admin page's logins on the server: opens, finds, refreshes and ends them.

A session is found by the SHA-256 of the random token in its cookie; the token itself is never
stored. A session ends when the person logs out, when it has been idle too long, or when the
account's password or state changes, so a copied cookie stops working on every daemon that
shares the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from yizhan.mailstore.models import Account, WebSession

#: How often a busy session's ``last_seen_at`` is written (not on every request).
TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True, kw_only=True)
class LiveSession:
    """A session that holds: whose it is, its CSRF token, and whether a password change is due."""

    token_hash: str
    account: str
    csrf_token: str
    must_change: bool


def hash_token(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(
    session: Session, account: str, *, must_change: bool, now: dt.datetime, peer: str
) -> tuple[str, LiveSession]:
    """A new session for ``account``: the token for the cookie, and the session."""
    token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=hash_token(token),
        account=account,
        csrf_token=secrets.token_urlsafe(32),
        must_change=must_change,
        created_at=now,
        last_seen_at=now,
        peer=peer[:100],
    )
    session.add(row)
    session.flush()
    return token, _live(row)


def find_session(
    session: Session, token: str, *, now: dt.datetime, idle: dt.timedelta, longest: dt.timedelta
) -> LiveSession | None:
    """The session of ``token`` if it holds at ``now``; refreshes its idle clock.

    It holds when it was not ended, was used within ``idle``, began within ``longest``, and its
    account is active.
    """
    row = session.get(WebSession, hash_token(token))
    if row is None or row.ended_at is not None:
        return None
    state = session.scalar(select(Account.state).where(Account.account == row.account))
    if (
        state != "active"
        or now - row.last_seen_at > idle
        or now - row.created_at > longest
        or now < row.created_at
    ):
        if row.ended_at is None:
            row.ended_at = now
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return _live(row)


def end_session(session: Session, token_hash: str, *, now: dt.datetime) -> None:
    """End one session (logout)."""
    row = session.get(WebSession, token_hash)
    if row is not None and row.ended_at is None:
        row.ended_at = now


def end_sessions_of(
    session: Session, account: str, *, now: dt.datetime, keep: str | None = None
) -> int:
    """End every open session of ``account`` but ``keep`` (a token hash); how many ended."""
    query = update(WebSession).where(WebSession.account == account, WebSession.ended_at.is_(None))
    if keep is not None:
        query = query.where(WebSession.token_hash != keep)
    result = session.execute(query.values(ended_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


def password_changed(session: Session, token_hash: str) -> None:
    """The session's person has chosen a new password: the rest of the page opens."""
    row = session.get(WebSession, token_hash)
    if row is not None:
        row.must_change = False


def _live(row: WebSession) -> LiveSession:
    return LiveSession(
        token_hash=row.token_hash,
        account=row.account,
        csrf_token=row.csrf_token,
        must_change=row.must_change,
    )
