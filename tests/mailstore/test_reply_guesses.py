"""Tests for yizhan.mailstore.reply_guesses: counting guessed reply tokens, locks that end,
double, are forgotten after a quiet day, and IT's unlock (issue 17)."""

from __future__ import annotations

import datetime as dt

from yizhan.daemon.context import Context
from yizhan.mailstore import accounts
from yizhan.mailstore.reply_guesses import count_guess, locked
from yizhan.routing.guessing import FIRST_LOCK, guess_keys

T0 = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)
KEYS = guess_keys(client="10.0.0.7", account="wangfang", envelope_sender=None, relayed=False)


def _guess(ctx: Context, now: dt.datetime) -> dt.datetime | None:
    with ctx.sessions.begin() as session:
        lock = count_guess(
            session, KEYS, now, limit=5, actor="wangfang", detail={"client": "10.0.0.7"}
        )
        return lock.until if lock else None


def _locked(ctx: Context, now: dt.datetime) -> dt.datetime | None:
    with ctx.sessions() as session:
        lock = locked(session, KEYS, now)
        return lock.until if lock else None


def test_the_sixth_guess_locks_for_an_hour_and_the_next_lock_for_two(bureau: Context) -> None:
    assert [_guess(bureau, T0 + dt.timedelta(minutes=n)) for n in range(5)] == [None] * 5
    sixth = T0 + dt.timedelta(minutes=5)
    assert _guess(bureau, sixth) == sixth + FIRST_LOCK
    assert _locked(bureau, sixth + FIRST_LOCK - dt.timedelta(seconds=1)) == sixth + FIRST_LOCK
    assert _locked(bureau, sixth + FIRST_LOCK) is None
    # Back after the lock: five more pass, the sixth locks twice as long.
    later = sixth + FIRST_LOCK
    assert [_guess(bureau, later + dt.timedelta(minutes=n)) for n in range(5)] == [None] * 5
    again = later + dt.timedelta(minutes=5)
    assert _guess(bureau, again) == again + 2 * FIRST_LOCK


def test_guesses_a_quiet_day_apart_are_forgotten(bureau: Context) -> None:
    for day in range(8):
        assert _guess(bureau, T0 + dt.timedelta(days=day, hours=day)) is None


def test_it_unlocks_the_account_but_not_the_address(bureau: Context) -> None:
    for n in range(6):
        _guess(bureau, T0 + dt.timedelta(minutes=n))
    with bureau.sessions.begin() as session:
        accounts.unlock(session, "wangfang", actor="mali", now=T0 + dt.timedelta(minutes=7))
    with bureau.sessions() as session:
        assert locked(session, KEYS[1:], T0 + dt.timedelta(minutes=8)) is None
        assert locked(session, KEYS[:1], T0 + dt.timedelta(minutes=8)) is not None
