"""Keeps the counters of guessed reply tokens (``routing.guessing``) and audits each lock.

The counters are rows of ``login_failures`` whose account part starts ``r+`` (see
:func:`yizhan.routing.guessing.guess_keys`): a guesser of reply addresses is stopped the way a
guesser of passwords is, by client address and by account, and the IT department's unlock
(:func:`yizhan.mailstore.accounts.unlock`) clears both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import AuditEntry, LoginFailure
from yizhan.routing.guessing import GUESS_MEMORY, lock_until

__all__ = ["GUESSING_LOCKED", "Lock", "count_guess", "locked"]

#: The audit action of a lock; the IT department is told of each (``it_notices``, "guessing").
GUESSING_LOCKED = "reply.guessing_locked"


@dataclass(frozen=True, kw_only=True)
class Lock:
    """A lock in force: until when, and the audit row that recorded it (when it began now)."""

    until: dt.datetime
    entry: AuditEntry | None = None


def locked(session: Session, keys: Sequence[tuple[str, str]], now: dt.datetime) -> Lock | None:
    """The lock in force on any of ``keys`` (the one that ends last), if any."""
    ends = [
        row.locked_until
        for key in keys
        if (row := session.get(LoginFailure, key)) is not None and row.locked_until is not None
    ]
    ends = [end for end in ends if now < end]
    return Lock(until=max(ends)) if ends else None


def count_guess(
    session: Session,
    keys: Sequence[tuple[str, str]],
    now: dt.datetime,
    *,
    limit: int,
    actor: str,
    detail: dict[str, object],
) -> Lock | None:
    """Count one token that failed its HMAC against each key; a key past ``limit`` guesses is
    locked, and the lock audited (``reply.guessing_locked``). The caller commits."""
    lock: Lock | None = None
    for account, client in keys:
        row = session.get(LoginFailure, (account, client))
        if row is None:
            row = LoginFailure(account=account, client=client, failed=0, locks=0, last_at=now)
            session.add(row)
        elif now - row.last_at > GUESS_MEMORY:
            row.failed = row.locks = 0
        row.failed += 1
        row.last_at = now
        if row.failed <= limit:
            continue
        row.locked_until = lock_until(row.locks, now)
        row.locks += 1
        entry = audit.record(
            session,
            at=now,
            actor=actor,
            action=GUESSING_LOCKED,
            target=f"{account}/{client}",
            detail={
                **detail,
                "guesses": row.failed,
                "until": row.locked_until.isoformat(timespec="minutes"),
                "locks": row.locks,
            },
        )
        row.failed = 0
        if lock is None or lock.until < row.locked_until:
            lock = Lock(until=row.locked_until, entry=entry)
    return lock
