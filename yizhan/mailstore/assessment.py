"""Reads the facts of one month for the monthly assessment (``routing.assessment``).

The steps that could have been late in the month (due before its end, and done during it or
still waiting), the documents they belong to with the publishing documents closed during it,
and the audit entries of the month that the assessment names.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import AuditEntry, Document, Step
from yizhan.routing.assessment import (
    PUBLISHING_KINDS,
    VIRUS_ACTIONS,
    AuditFact,
    DocumentFact,
    StepFact,
    assess,
    month_bounds,
)

__all__ = ["assessment"]

#: The audit actions the assessment reads.
_ACTIONS = frozenset({"impersonation", "doc.reject", *VIRUS_ACTIONS})


def assessment(
    session: Session, year: int, month: int, tz: dt.tzinfo, now: dt.datetime
) -> dict[str, Any]:
    """The assessment of ``year``-``month`` in the bureau's time zone ``tz``, as plain data;
    ``now`` bounds a month not yet over."""
    start, end = month_bounds(year, month, tz)
    rows = session.execute(
        select(Step, Document)
        .join(Document, Document.id == Step.document_id)
        .where(
            Step.due_at.is_not(None),
            Step.due_at < end,
            or_(Step.state == "waiting", Step.done_at >= start),
        )
        .order_by(Step.id)
    ).all()
    documents: dict[int, Document] = {d.id: d for _, d in rows}
    published = session.scalars(
        select(Document).where(
            Document.kind.in_(PUBLISHING_KINDS),
            Document.state == "closed",
            Document.updated_at >= start,
            Document.updated_at < end,
        )
    ).all()
    documents.update({d.id: d for d in published})
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.at >= start, AuditEntry.at < end, AuditEntry.action.in_(_ACTIONS))
        .order_by(AuditEntry.id)
    ).all()
    rejected = {
        int(e.target[4:])
        for e in entries
        if e.action == "doc.reject" and e.target and e.target[4:].isdigit()
    }
    for doc in session.scalars(select(Document).where(Document.id.in_(rejected))):
        documents.setdefault(doc.id, doc)
    reviewed = set(
        session.scalars(
            select(Step.document_id).where(
                Step.document_id.in_(list(documents)), Step.outcome == "approve"
            )
        )
    )
    directory = load_directory(session)

    def unit_of(step: Step) -> str | None:
        person = directory.people.get(step.on_behalf_of or step.assignee)
        return person.unit if person is not None else step.unit

    return assess(
        year=year,
        month=month,
        start=start,
        end=end,
        now=now,
        documents={
            d.id: DocumentFact(
                id=d.id,
                kind=d.kind,
                title=d.title,
                state=d.state,
                reviewed=d.id in reviewed,
                closed_at=_aware(d.updated_at) if d.state == "closed" else None,
            )
            for d in documents.values()
        },
        steps=[
            StepFact(
                id=s.id,
                document_id=s.document_id,
                name=s.name,
                person=s.on_behalf_of or s.assignee,
                unit=unit_of(s),
                state=s.state,
                outcome=s.outcome,
                due_at=_aware(s.due_at),
                done_at=_aware(s.done_at),
            )
            for s, _ in rows
        ],
        audit=[
            AuditFact(
                id=e.id,
                at=_aware(e.at) or e.at,
                actor=e.actor,
                action=e.action,
                target=e.target,
                detail=e.detail or {},
            )
            for e in entries
        ],
        directory=directory,
    )


def _aware(at: dt.datetime | None) -> dt.datetime | None:
    # SQLite gives back naive datetimes; Yizhan stores UTC.
    if at is not None and at.tzinfo is None:
        return at.replace(tzinfo=dt.UTC)
    return at
