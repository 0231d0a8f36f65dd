"""Legal holds (``yizhan doc hold ID``): a held document outlives every retention period until
the hold is released. Placing and releasing are audited with who and why."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.documents import doc_target
from yizhan.mailstore.models import Document, LegalHold


def place_hold(
    session: Session, document: Document, *, by: str, reason: str, now: dt.datetime
) -> bool:
    """Hold ``document``; False when it was held already (the first hold's reason stays)."""
    if session.get(LegalHold, document.id) is not None:
        return False
    session.add(LegalHold(document_id=document.id, placed_at=now, placed_by=by, reason=reason))
    audit.record(
        session,
        at=now,
        actor=by,
        action="document.hold",
        target=doc_target(document.id),
        detail={"reason": reason},
    )
    return True


def release_hold(session: Session, document: Document, *, by: str, now: dt.datetime) -> bool:
    """Release the hold on ``document``; False when it had none."""
    hold = session.get(LegalHold, document.id)
    if hold is None:
        return False
    session.delete(hold)
    audit.record(
        session,
        at=now,
        actor=by,
        action="document.hold_released",
        target=doc_target(document.id),
        detail={"reason": hold.reason, "placed_by": hold.placed_by},
    )
    return True


def held_documents(session: Session) -> set[int]:
    """The ids of every document under a legal hold."""
    return set(session.scalars(select(LegalHold.document_id)))
