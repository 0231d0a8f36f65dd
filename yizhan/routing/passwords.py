"""The password and login policy (第十六條; mine rules 一(四)): pure decisions, time passed in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class LoginPolicy:
    """How strict logins are; the defaults are the bureau's."""

    min_length: int = 8
    max_failed: int = 5
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    max_age: dt.timedelta = dt.timedelta(days=90)


def password_problem(password: str, *, account: str, policy: LoginPolicy) -> str | None:
    """Why ``password`` may not be used, or None when it may.

    The regulation's floor is six characters; the bureau asks for at least eight, not the
    account name, and not a single repeated character.
    """
    if len(password) < policy.min_length:
        return f"the password must be at least {policy.min_length} characters long"
    if password.strip() != password or "\n" in password:
        return "the password may not begin or end with spaces or contain line breaks"
    if account and account.lower() in password.lower():
        return "the password may not contain the account name"
    if len(set(password)) < 3:
        return "the password must use at least three different characters"
    return None


def is_locked(locked_until: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a lockout is still in force at ``now``."""
    return locked_until is not None and now < locked_until


def lock_after_failure(
    failed_in_a_row: int, now: dt.datetime, policy: LoginPolicy
) -> dt.datetime | None:
    """When the account unlocks after this failure, or None if it is not locked by it."""
    return now + policy.lockout if failed_in_a_row >= policy.max_failed else None


#: A client address that fails this many times the per-account limit in a row, over any
#: accounts, is locked out of all of them (it is trying accounts, not mistyping one password).
SPRAY_FACTOR = 4
#: The longest a lock lasts, however often a guesser comes back.
LONGEST_LOCK = dt.timedelta(hours=24)
#: Failures in a row that are answered at once: an owner mistypes once or twice.
FREE_FAILURES = 2


def lock_for(earlier_locks: int, now: dt.datetime, policy: LoginPolicy) -> dt.datetime:
    """Until when a guesser is locked out (第十六條): ``policy.lockout``, doubled for each
    lock before it at the same address, at most ``LONGEST_LOCK``."""
    length: dt.timedelta = policy.lockout * 2 ** min(earlier_locks, 16)
    return now + min(length, LONGEST_LOCK)


def failure_delay(failed_in_a_row: int) -> float:
    """Seconds to wait before answering a failed login: none for the first two, then 0.5, 1,
    2, 4 (at most), so that guessing is slow while an owner's typo costs nothing."""
    if failed_in_a_row <= FREE_FAILURES:
        return 0.0
    return float(min(0.5 * 2 ** (failed_in_a_row - FREE_FAILURES - 1), 4.0))


def password_expired(changed_at: dt.datetime | None, now: dt.datetime, policy: LoginPolicy) -> bool:
    """Whether a password set at ``changed_at`` is past its maximum age."""
    return changed_at is not None and now - changed_at > policy.max_age
