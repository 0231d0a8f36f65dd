"""routing.guessing: whom a guessed reply token counts against, and how long a lock lasts."""

from __future__ import annotations

import datetime as dt

from yizhan.routing.guessing import FIRST_LOCK, LONGEST_LOCK, guess_keys, lock_until

NOW = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)


def test_an_authenticated_sender_counts_by_address_and_by_account() -> None:
    # A guesser changing machines is stopped by the account; one changing accounts, by address.
    keys = guess_keys(client="10.0.0.7", account="wangfang", envelope_sender=None, relayed=False)
    assert keys == [("r+*", "10.0.0.7"), ("r+wangfang", "*")]


def test_relayed_mail_counts_by_envelope_sender_not_by_the_relay() -> None:
    # The organisation's MTA carries everyone's mail: its address is never locked.
    keys = guess_keys(
        client="10.0.0.25", account=None, envelope_sender="WangFang@bureau.example", relayed=True
    )
    assert keys == [("r+*", "from:wangfang@bureau.example")]


def test_long_values_fit_the_counter_columns() -> None:
    keys = guess_keys(client="x" * 200, account="a" * 80, envelope_sender=None, relayed=False)
    assert all(len(a) <= 64 and len(c) <= 64 for a, c in keys)


def test_locks_double_for_a_guesser_who_comes_back_up_to_a_day() -> None:
    assert lock_until(0, NOW) == NOW + FIRST_LOCK
    assert lock_until(1, NOW) == NOW + 2 * FIRST_LOCK
    assert lock_until(3, NOW) == NOW + 8 * FIRST_LOCK
    assert lock_until(40, NOW) == NOW + LONGEST_LOCK
