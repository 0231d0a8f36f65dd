"""The effect records a decision carries: what the edge must do beyond moving the document.

The engine stays pure (docs/architecture.md): when a module's flow ends it does not publish a
bulletin, write a leave record or change the directory itself, it names the change in a frozen
record on ``Decision.effects`` and the daemon applies it in the same transaction. A flow says
which record it ends with by name (``Flow.on_close``); ``routing.closing`` builds it from the
closed document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApplyDirectoryChange",
    "Effect",
    "PublishBulletin",
    "PublishNews",
    "RecordLeave",
    "WithdrawBulletin",
]


@dataclass(frozen=True, kw_only=True)
class PublishBulletin:
    """Send an approved bulletin to everyone in its scope (第二十三條).

    ``units``, ``roles`` and ``people`` are the scope as the author chose it (unit ids, role
    names, accounts); ``expires`` is the ISO date after which the bulletin lapses.
    """

    units: tuple[str, ...]
    roles: tuple[str, ...]
    people: tuple[str, ...]
    expires: str


@dataclass(frozen=True, kw_only=True)
class WithdrawBulletin:
    """Tell everyone who received a bulletin that its author withdrew it."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class RecordLeave:
    """Write an approved leave into HR's records (第六條) and tell HR."""

    account: str
    leave_type: str
    start: dt.date
    end: dt.date
    days: int


@dataclass(frozen=True, kw_only=True)
class ApplyDirectoryChange:
    """Apply an approved change request (申請表, 第十條) to the directory and the accounts.

    ``change`` is the form as :func:`yizhan.routing.changes.parse_change` read it, in plain data.
    """

    change: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PublishNews:
    """Send an approved news item to every subscriber (信息宣傳, 第二條).

    ``body`` is the text as published: the office's edited text when it edited the item.
    """

    body: str
    edited: bool = False


#: Any effect record.
Effect = PublishBulletin | WithdrawBulletin | RecordLeave | ApplyDirectoryChange | PublishNews
