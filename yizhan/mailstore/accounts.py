"""Keeps accounts: password hashes (argon2), state, and the login counters; audits every change."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import Account, LoginFailure, Person
from yizhan.routing.directory import ACCOUNT_STATES
from yizhan.routing.passwords import (
    SPRAY_FACTOR,
    LoginPolicy,
    is_locked,
    lock_for,
    password_expired,
    password_problem,
)

_hasher = PasswordHasher()
#: One argon2 hash or check at a time in this process. Each takes 64 MiB (the hasher's memory
#: cost) for its moment, and the process's peak resident size is its resident size plus that
#: many times 64 MiB: eight mail clients logging in together took the daemon from 120 to 510
#: MiB (issue 16). A check already uses several threads (its lanes), so a second one at once
#: bought little on a machine with a few cores; a mail client that logs in again is answered
#: from ``VerifiedPasswords`` without one.
_ARGON2_AT_ONCE = threading.BoundedSemaphore(1)


@functools.cache
def _dummy_hash() -> str:
    """Verified in place of a password when there is no account (or no password) to check, so
    that an unknown account takes as long to refuse as a wrong password: no account list by
    timing. Made at the first need, not at import: every process that imports this module (a
    processing worker, each ``yizhan`` verb) would otherwise pay an argon2 hash, 64 MiB of peak
    and half a second, for nothing."""
    with _ARGON2_AT_ONCE:
        return _hasher.hash(secrets.token_urlsafe(16))


#: The key of the failures of one client address over every account.
ANY_ACCOUNT = "*"

# Characters that survive being read aloud over the phone or copied from a printout.
_TEMP_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class AccountError(Exception):
    """An account operation was refused; the message says why."""


@dataclass(frozen=True, kw_only=True)
class LoginResult:
    """The outcome of a password check."""

    ok: bool
    account: str | None
    reason: str = ""
    #: Failed logins in a row from this client address to this account (for the caller's
    #: delay, ``routing.passwords.failure_delay``).
    failed: int = 0
    #: The password was right but must be changed before the account may do anything else
    #: (a temporary or an expired one): the admin page lets the person change it; SMTP refuses.
    must_change: bool = False


class VerifiedPasswords:
    """Remembers, in this process only, which password last verified against which hash.

    An argon2 check costs tens of milliseconds of CPU by design; a mail client that logs in for
    every message would spend the server's cores on it (Dovecot keeps an auth cache for the same
    reason). The entry is keyed by the stored hash, so a changed password misses at once, and
    the account's state and lockout are still read from the database on every login. Passwords
    are kept only as an HMAC under a key that never leaves the process.
    """

    def __init__(self, ttl: dt.timedelta = dt.timedelta(minutes=10)) -> None:
        self._key = secrets.token_bytes(32)
        self._ttl = ttl
        self._entries: dict[str, tuple[str, bytes, dt.datetime]] = {}
        self._lock = threading.Lock()

    def _mac(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()

    def known(self, account: str, password_hash: str, password: str, now: dt.datetime) -> bool:
        """Whether this password verified against this hash within the last ``ttl``."""
        with self._lock:
            entry = self._entries.get(account)
        if entry is None or entry[0] != password_hash or now - entry[2] > self._ttl:
            return False
        return hmac.compare_digest(entry[1], self._mac(password))

    def remember(self, account: str, password_hash: str, password: str, now: dt.datetime) -> None:
        """Note a successful verification."""
        with self._lock:
            self._entries[account] = (password_hash, self._mac(password), now)


def new_temporary_password() -> str:
    """A random 12-character initial password."""
    return "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(12))


def get_account(session: Session, account: str) -> Account:
    """The account row, or :class:`AccountError` naming the unknown account."""
    row = session.get(Account, account)
    if row is None:
        raise AccountError(f"no such account: {account}")
    return row


def set_password(
    session: Session,
    account: str,
    password: str,
    *,
    temporary: bool,
    actor: str,
    now: dt.datetime,
    policy: LoginPolicy,
) -> None:
    """Set a password after checking it against the policy; clears any lockout."""
    row = get_account(session, account)
    if row.state == "revoked":
        raise AccountError(f"account {account} is revoked; it cannot be given a password")
    problem = password_problem(password, account=account, policy=policy)
    if problem:
        raise AccountError(problem)
    with _ARGON2_AT_ONCE:
        row.password_hash = _hasher.hash(password)
    row.password_temporary = temporary
    row.password_changed_at = now
    row.failed_logins = 0
    row.locked_until = None
    audit.record(
        session,
        at=now,
        actor=actor,
        action="account.password",
        target=account,
        detail={"temporary": temporary},
    )


def set_state(session: Session, account: str, state: str, *, actor: str, now: dt.datetime) -> None:
    """Make an account active, suspended or revoked (a person who left their post)."""
    if state not in ACCOUNT_STATES:
        raise AccountError(f"state {state!r}; allowed: {', '.join(ACCOUNT_STATES)}")
    row = get_account(session, account)
    if row.state == "revoked" and state != "revoked":
        raise AccountError(f"account {account} is revoked; create a new account instead")
    previous, row.state = row.state, state
    if state == "revoked":
        row.password_hash = None
    audit.record(
        session,
        at=now,
        actor=actor,
        action=f"account.{state}",
        target=account,
        detail={"previous": previous},
    )


def authenticate(
    session: Session,
    login: str,
    password: str,
    *,
    now: dt.datetime,
    policy: LoginPolicy,
    verified: VerifiedPasswords | None = None,
    client: str = "",
) -> LoginResult:
    """Check a login and count the outcome; the caller commits, whatever the result.

    ``login`` is an account name; the reason in a refusal is safe to show to the person.
    Failures are counted per ``client`` address and account, and per address over every
    account: a lock stops that address (the guesser), not the owner elsewhere (第十六條;
    issue 17). An unknown account costs the same password check as a known one.
    """
    name = login.strip().lower()[:64]
    row = session.get(Account, name) if name else None
    client = client[:64]
    pair = _failures(session, name or "?", client, now)
    spray = _failures(session, ANY_ACCOUNT, client, now)
    for counter in (pair, spray):
        if is_locked(counter.locked_until, now):
            until = (
                counter.locked_until.isoformat(timespec="minutes") if counter.locked_until else ""
            )
            return LoginResult(
                ok=False,
                account=row.account if row else None,
                reason=f"too many failed logins from this address; locked until {until}",
                failed=pair.failed,
            )
    if row is not None and row.state != "active":
        _verify(_dummy_hash(), password)
        return LoginResult(ok=False, account=row.account, reason=f"the account is {row.state}")
    if row is not None and is_locked(row.locked_until, now):
        # A lock of the whole account written before locks were per address.
        until = row.locked_until.isoformat(timespec="minutes") if row.locked_until else ""
        return LoginResult(
            ok=False, account=row.account, reason=f"too many failed logins; locked until {until}"
        )
    stored = row.password_hash if row is not None else None
    if stored is None:
        _verify(_dummy_hash(), password)
    if (
        row is None
        or stored is None
        or not (
            (verified is not None and verified.known(row.account, stored, password, now))
            or _verify(stored, password)
        )
    ):
        if row is not None:
            row.failed_logins += 1
        _count_failure(session, pair, now, policy, limit=policy.max_failed)
        _count_failure(session, spray, now, policy, limit=policy.max_failed * SPRAY_FACTOR)
        return LoginResult(
            ok=False,
            account=row.account if row else None,
            reason="unknown account or wrong password",
            failed=pair.failed,
        )
    row.failed_logins = 0
    row.locked_until = None
    pair.failed = 0
    spray.failed = 0
    if row.password_temporary:
        return LoginResult(
            ok=False,
            account=row.account,
            reason="the initial password must be changed before the account can send",
            must_change=True,
        )
    if password_expired(row.password_changed_at, now, policy):
        return LoginResult(
            ok=False,
            account=row.account,
            reason=f"the password is older than {policy.max_age.days} days and must be changed",
            must_change=True,
        )
    row.last_login_at = now
    if verified is not None:
        verified.remember(row.account, stored, password, now)
    return LoginResult(ok=True, account=row.account)


def vouched_login(
    session: Session,
    login: str,
    *,
    now: dt.datetime,
    policy: LoginPolicy,
    record: bool = True,
) -> LoginResult:
    """A login whose password another server checked (the organisation's Postfix with SASL,
    issue 13): the account policy of :func:`authenticate` without the password. A suspended,
    revoked or locked account, or one whose password must be changed, is refused; a success is
    the person's last login unless ``record`` is false (a look before the mail arrives). The
    caller commits."""
    row = session.get(Account, login.strip().lower())
    if row is None:
        return LoginResult(ok=False, account=None, reason="unknown account")
    if row.state != "active":
        return LoginResult(ok=False, account=row.account, reason=f"the account is {row.state}")
    if is_locked(row.locked_until, now):
        until = row.locked_until.isoformat(timespec="minutes") if row.locked_until else ""
        return LoginResult(
            ok=False, account=row.account, reason=f"too many failed logins; locked until {until}"
        )
    if row.password_temporary or password_expired(row.password_changed_at, now, policy):
        return LoginResult(
            ok=False,
            account=row.account,
            reason="the password must be changed before the account can send",
            must_change=True,
        )
    if record:
        row.last_login_at = now
    return LoginResult(ok=True, account=row.account)


def _failures(session: Session, account: str, client: str, now: dt.datetime) -> LoginFailure:
    # Added to the session only when a failure is counted: a login that succeeds writes nothing.
    found = session.get(LoginFailure, (account, client))
    if found is None:
        return LoginFailure(account=account, client=client, failed=0, locks=0, last_at=now)
    if now - found.last_at > LOGIN_MEMORY:
        found.failed = found.locks = 0
    return found


#: Failures older than this are forgotten; so are the earlier locks that double a new one.
LOGIN_MEMORY = dt.timedelta(days=1)


def _count_failure(
    session: Session, counter: LoginFailure, now: dt.datetime, policy: LoginPolicy, *, limit: int
) -> None:
    session.add(counter)
    counter.failed += 1
    counter.last_at = now
    if counter.failed < limit:
        return
    counter.locked_until = lock_for(counter.locks, now, policy)
    counter.locks += 1
    audit.record(
        session,
        at=now,
        actor=counter.account if counter.account != ANY_ACCOUNT else "unknown",
        action="account.locked" if counter.account != ANY_ACCOUNT else "client.locked",
        target=counter.account,
        detail={
            "failed": counter.failed,
            "client": counter.client,
            "until": counter.locked_until.isoformat(timespec="minutes"),
            "locks": counter.locks,
        },
    )
    counter.failed = 0


def unlock(session: Session, account: str, *, actor: str, now: dt.datetime) -> None:
    """Clear the failed-login counter and any lockout (the IT department, on the admin page)."""
    row = get_account(session, account)
    previous = row.failed_logins
    row.failed_logins = 0
    row.locked_until = None
    # The reply-token guessing counters of the account go too (``mailstore.reply_guesses``).
    session.execute(delete(LoginFailure).where(LoginFailure.account.in_((account, "r+" + account))))
    audit.record(
        session,
        at=now,
        actor=actor,
        action="account.unlock",
        target=account,
        detail={"failed": previous},
    )


def list_accounts(session: Session) -> list[tuple[Person, Account]]:
    """Every person with their account, in account order."""
    rows = session.execute(
        select(Person, Account)
        .join(Account, Account.account == Person.account)
        .order_by(Person.account)
    )
    return [(p, a) for p, a in rows]


def _verify(password_hash: str, password: str) -> bool:
    try:
        with _ARGON2_AT_ONCE:
            return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
