"""Decides when a delivery that failed for the time being is tried again, or given up."""

from __future__ import annotations

import datetime as dt

#: The longest wait between two attempts, however many have failed.
MAX_BACKOFF = dt.timedelta(hours=1)


def backoff(attempts: int, first: dt.timedelta, cap: dt.timedelta = MAX_BACKOFF) -> dt.timedelta:
    """The wait after the ``attempts``-th failed attempt: ``first``, doubling each time, capped.

    >>> backoff(3, dt.timedelta(minutes=1))
    datetime.timedelta(seconds=240)
    """
    if attempts <= 1:
        return min(first, cap)
    # Past 2**20 the cap has long been reached; stopping there keeps the product small.
    return min(first * (1 << min(attempts - 1, 20)), cap)


def next_attempt(
    *, attempts: int, now: dt.datetime, expires_at: dt.datetime, first: dt.timedelta
) -> dt.datetime | None:
    """When to try again after the ``attempts``-th temporary failure; None means give up.

    The last attempt is made at ``expires_at`` itself, so a relay that comes back just before
    the deadline still gets the message.
    """
    if now >= expires_at:
        return None
    return min(now + backoff(attempts, first), expires_at)
