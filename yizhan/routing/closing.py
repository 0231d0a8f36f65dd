"""What a flow ends with: the effect record its ``Flow.on_close`` names, built from the closed
document's fields (a bulletin published 第二十三條, a leave recorded 第六條, a directory change
第十條, a news item published). The records themselves are ``routing.effects``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from yizhan.routing.documents import DocumentState
from yizhan.routing.effects import (
    ApplyDirectoryChange,
    Effect,
    PublishBulletin,
    PublishNews,
    RecordLeave,
)

__all__ = ["CLOSE_EFFECTS", "effect_on_close"]


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
