"""What the IT department was last told of each kind, and what happened since (``routing.
it_notices``).

Each mail to IT is an ``it.notice`` audit row naming its kind and the last event it covered
(``upto``): an audit row id, or for set-aside messages an inbound id. The events of a kind are
read from the audit trail (impersonation, viruses, lockouts, reply tokens guessed) and the
inbound store (messages set aside after failing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import AuditEntry, Inbound
from yizhan.routing.it_notices import Event, alert_due

__all__ = ["LastNotice", "events_since", "last_notice", "may_tell_now", "record_notice"]

#: The audit action of a mail to IT.
NOTICE_ACTION = "it.notice"

#: The audit actions of each kind read from the trail, and the content rule of a virus.
_ACTIONS = {
    "impersonation": ("impersonation",),
    "virus": ("content.refused", "content.quarantined"),
    "lockout": ("account.locked",),
    "guessing": ("reply.guessing_locked",),
}
_VIRUS_RULE = "virus"


@dataclass(frozen=True, kw_only=True)
class LastNotice:
    """When IT was last told of a kind, and the last event that mail covered."""

    at: dt.datetime
    upto: int


def last_notice(session: Session, kind: str) -> LastNotice | None:
    """The last mail to IT of ``kind``, if any."""
    row = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == NOTICE_ACTION, AuditEntry.target == kind)
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return LastNotice(at=_aware(row.at), upto=int(row.detail.get("upto", 0)))


def events_since(session: Session, kind: str, after: int) -> list[Event]:
    """The events of ``kind`` after id ``after``, oldest first."""
    if kind == "set_aside":
        rows = session.scalars(
            select(Inbound)
            .where(Inbound.state == "failed", Inbound.id > after)
            .order_by(Inbound.id)
        ).all()
        return [
            Event(
                id=r.id,
                at=_aware(r.processed_at or r.received_at),
                who=r.sender_account or r.mail_from or "-",
                what=(r.reason or "")[:200],
            )
            for r in rows
        ]
    query = select(AuditEntry).where(AuditEntry.action.in_(_ACTIONS[kind]), AuditEntry.id > after)
    if kind == "virus":
        query = query.where(AuditEntry.target == _VIRUS_RULE)
    entries = session.scalars(query.order_by(AuditEntry.id)).all()
    return [
        Event(
            id=e.id,
            at=_aware(e.at),
            who=e.actor,
            what=_what(kind, e),
        )
        for e in entries
    ]


def may_tell_now(session: Session, kind: str, now: dt.datetime, event_id: int) -> bool:
    """Whether the event just recorded may be told at once: no mail of its kind in the last
    hour. When it may, the mail is recorded here as sent, covering events up to ``event_id``."""
    last = last_notice(session, kind)
    pending = events_since(session, kind, last.upto if last else 0)
    if not alert_due(now, last.at if last else None, pending):
        return False
    record_notice(session, kind, now, upto=max(event_id, pending[-1].id), count=len(pending))
    return True


def record_notice(
    session: Session,
    kind: str,
    now: dt.datetime,
    *,
    upto: int,
    count: int,
    to: tuple[str, ...] = (),
) -> None:
    """Record a mail to IT of ``kind`` covering events up to ``upto``."""
    audit.record(
        session,
        at=now,
        actor=audit.SYSTEM,
        action=NOTICE_ACTION,
        target=kind,
        detail={"upto": upto, "count": count, "to": list(to)},
    )
    session.flush()


def _what(kind: str, entry: AuditEntry) -> str:
    detail = entry.detail or {}
    if kind == "impersonation":
        return f"→ {entry.target or '-'}"
    if kind == "virus":
        return str(detail.get("reason", ""))[:200]
    if kind == "guessing":
        return f"{detail.get('client', '')} → {detail.get('until', '')}"
    return f"{detail.get('failed', '')}"


def _aware(at: dt.datetime) -> dt.datetime:
    # SQLite gives back naive datetimes; Yizhan stores UTC.
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at
