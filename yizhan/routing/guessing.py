"""Guessed reply tokens (第七條; issue 17): who is counted, how many are let through, how long
a guesser is stopped.

A reply token (``r+TOKEN@``) carries an HMAC, so a token Yizhan never gave can only be a typo or
a guess. The gateway counts the tokens that fail their HMAC at RCPT, per client address and per
authenticated account (per envelope sender for mail the organisation's MTA relays, since one
relay carries everyone's mail). A sender gets ``limit`` of them answered as usual (a mistyped
address happens); the next is refused at RCPT, and then every ``r+`` address from that client or
account, valid or not, until the lock ends, so that the refusal does not tell a guesser which
tokens are real. Locks double for a guesser who comes back. Pure: times are passed in.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

__all__ = [
    "FIRST_LOCK",
    "GUESS_MEMORY",
    "LONGEST_LOCK",
    "guess_keys",
    "lock_until",
]

#: How long the first lock lasts; each lock before it within ``GUESS_MEMORY`` doubles it.
FIRST_LOCK: Final = dt.timedelta(hours=1)
#: The longest a lock lasts, however often a guesser comes back.
LONGEST_LOCK: Final = dt.timedelta(hours=24)
#: Guesses (and earlier locks) older than this, counted from the last one, are forgotten.
GUESS_MEMORY: Final = dt.timedelta(days=1)

#: The ``account`` part of a counter key (the store keeps counters as (account, client) pairs,
#: as for failed logins): ``r+`` and the account, or ``r+*`` for any account.
_PREFIX: Final = "r+"
_ANY: Final = "*"
_KEY_LENGTH: Final = 64


def guess_keys(
    *, client: str, account: str | None, envelope_sender: str | None, relayed: bool
) -> list[tuple[str, str]]:
    """The counters a guess from this SMTP session counts against: ``(account, client)`` keys.

    Authenticated: the client address over any account, and the account from any address.
    Through a trusted relay (no AUTH here): the envelope sender, never the relay's address,
    which carries the whole organisation's mail.
    """
    keys: list[tuple[str, str]] = []
    if relayed:
        sender = (envelope_sender or "").strip().lower() or "<>"
        keys.append((_PREFIX + _ANY, ("from:" + sender)[:_KEY_LENGTH]))
    else:
        keys.append((_PREFIX + _ANY, client[:_KEY_LENGTH]))
    if account is not None:
        keys.append(((_PREFIX + account)[:_KEY_LENGTH], _ANY))
    return keys


def lock_until(earlier_locks: int, now: dt.datetime) -> dt.datetime:
    """Until when a guesser is refused: ``FIRST_LOCK`` doubled for each earlier lock, at most
    ``LONGEST_LOCK``."""
    length: dt.timedelta = FIRST_LOCK * 2 ** min(earlier_locks, 16)
    return now + min(length, LONGEST_LOCK)
