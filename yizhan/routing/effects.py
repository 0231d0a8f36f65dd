"""The effect records a decision carries: what the edge must do beyond moving the document.

The engine stays pure (DESIGN.md, routing/): when a module's flow ends it does not publish a
bulletin, write a leave record or change the directory itself, it names the change in a frozen
record on ``Decision.effects`` and the daemon applies it in the same transaction. A flow says
which record it ends with by name (``Flow.on_close``, one of :data:`CLOSE_EFFECTS`), so that the
rules file can name it too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from yizhan.routing.documents import DocumentState

__all__ = [
    "CLOSE_EFFECTS",
    "ApplyDirectoryChange",
    "Effect",
    "PublishBulletin",
    "PublishNews",
    "RecordLeave",
    "WithdrawBulletin",
    "effect_on_close",
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


def _publish(doc: DocumentState) -> Effect:
    f = doc.fields
    return PublishBulletin(
        units=tuple(f.get("scope_units", ())),
        roles=tuple(f.get("scope_roles", ())),
        people=tuple(f.get("scope_people", ())),
        expires=str(f.get("expires", "")),
    )


def _record_leave(doc: DocumentState) -> Effect:
    f = doc.fields
    return RecordLeave(
        account=doc.author,
        leave_type=str(f["leave_type"]),
        start=dt.date.fromisoformat(f["leave_start"]),
        end=dt.date.fromisoformat(f["leave_end"]),
        days=int(f["leave_days"]),
    )


def _apply_change(doc: DocumentState) -> Effect:
    return ApplyDirectoryChange(change=MappingProxyType(dict(doc.fields.get("change", {}))))


def _publish_news(doc: DocumentState) -> Effect:
    return PublishNews(
        body=str(doc.fields.get("body", "")), edited=bool(doc.fields.get("edited_by"))
    )


#: The effects a flow may end with, by the name ``Flow.on_close`` uses, each built from the
#: closed document's fields.
CLOSE_EFFECTS: Final[Mapping[str, Callable[[DocumentState], Effect]]] = MappingProxyType(
    {
        "publish_bulletin": _publish,
        "record_leave": _record_leave,
        "apply_change": _apply_change,
        "publish_news": _publish_news,
    }
)


def effect_on_close(name: str, doc: DocumentState) -> Effect:
    """The effect record ``name`` (see :data:`CLOSE_EFFECTS`) for the closing ``doc``."""
    return CLOSE_EFFECTS[name](doc)
