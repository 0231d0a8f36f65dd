"""Reads the store for 信息宣傳 (第二條): who subscribes, and which news items were published.

The subscription is a personal setting (``routing.settings.XINXI``, kept by
``mailstore.settings``); a published item is a closed ``xinxi`` document whose fields carry
``published_at`` (written when the publication is queued, ``daemon.desk.modules.xinxi``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.mailstore.models import Document, PersonSetting
from yizhan.routing.publicity import PublishedItem
from yizhan.routing.settings import SUBSCRIBED, XINXI


def subscribers(session: Session) -> list[str]:
    """The accounts subscribed to news items, in account order (active or not: the caller
    checks the directory)."""
    return list(
        session.scalars(
            select(PersonSetting.account)
            .where(PersonSetting.key == XINXI, PersonSetting.value == SUBSCRIBED)
            .order_by(PersonSetting.account)
        )
    )


def published_items(session: Session, *, before: dt.datetime) -> list[PublishedItem]:
    """Every news item published so far that was submitted before ``before``.

    An item is published after it is submitted, so a year's items are among those submitted
    before the year's end; the year itself is the caller's to pick (``yearly_counts``).
    """
    documents = session.scalars(
        select(Document).where(
            Document.kind == "xinxi", Document.state == "closed", Document.created_at < before
        )
    )
    return [
        PublishedItem(unit=d.unit_id, published_at=dt.datetime.fromisoformat(published))
        for d in documents
        if (published := d.fields.get("published_at"))
    ]
