"""IT hears what it must, and never a flood (第七條; mine rules 一(八)).

第七條 has acting in another's name reported to the IT department, and mine rules 一(八) the
viruses found; guessing reply addresses is of a kind with the first (a sender stopped at the
gateway for replying to r+ addresses Yizhan never gave, ``routing.guessing``). The IT
department also answers for messages set aside after failing and for accounts locked after
repeated failures. Impersonation, viruses and guessing are told at once; set-aside messages and
lockouts in one digest a working day. Whatever the kind, IT gets at most one mail of it an
hour: what happens in between is counted into the next mail.

Pure: the store gives the events after the last notice of a kind and when that notice went;
the daemon sends what :func:`alert_due` and :func:`digest_lines` decide.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DIGEST_KINDS",
    "IMMEDIATE_KINDS",
    "MIN_GAP",
    "Event",
    "alert_due",
]

#: Told at once (第七條, mine rules 一(八)); and once a working day.
IMMEDIATE_KINDS: Final = ("impersonation", "virus", "guessing")
DIGEST_KINDS: Final = ("set_aside", "lockout")

#: At most one mail of a kind in this time.
MIN_GAP: Final = dt.timedelta(hours=1)


@dataclass(frozen=True, kw_only=True)
class Event:
    """One thing IT must hear of: its id (an audit row, or a set-aside inbound message), when,
    who, and what in a few words."""

    id: int
    at: dt.datetime
    who: str
    what: str


def alert_due(now: dt.datetime, last_sent: dt.datetime | None, pending: Sequence[Event]) -> bool:
    """Whether a mail of a kind goes now: something to tell, and none in the last hour."""
    if not pending:
        return False
    return last_sent is None or now - last_sent >= MIN_GAP
